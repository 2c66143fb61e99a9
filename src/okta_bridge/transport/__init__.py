"""HTTP over verified TLS: deadlines, pools, retries, redirects and what each failure means."""

"""The rotation Lambda: Secrets Manager's four steps for the Okta credentials; Okta's admin API."""

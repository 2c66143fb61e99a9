"""Okta access tokens: credentials, client authentication, DPoP proofs, the request, the cache."""

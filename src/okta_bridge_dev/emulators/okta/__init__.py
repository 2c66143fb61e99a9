"""An Okta-like org: token endpoints, client authentication, DPoP, the Management API."""

"""okta-bridge: an AWS Lambda that reads Okta-protected internal JSON APIs."""

__version__ = "0.1.0"

"""The Okta credentials secret: read by signed HTTPS, the extension or boto3, and cached."""

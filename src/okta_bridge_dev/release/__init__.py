"""Build and operate the stack on AWS: the Lambda zip, the template, deploy, secret, rotate now."""

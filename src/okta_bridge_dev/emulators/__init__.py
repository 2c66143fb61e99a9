"""The local stack: real TLS servers on loopback that stand in for AWS and Okta.

Secrets Manager (moto), the Parameters and Secrets extension, Lambda's Invoke API, an Okta-like
org and a sample internal API, each with counters and fault injection, so that the demo and the
tests run the real handler end to end with no AWS account. Needs the ``dev`` extra (moto,
werkzeug); never in the wheel's runtime path nor the Lambda zip.
"""

"""The fleet's shared token cache: one Okta token for every execution environment of a function.

``cache`` decides (the lease, the wait, the refresh for the fleet, the fallback); ``table`` is the
DynamoDB item it keeps; ``envelope`` seals that item with KMS data keys; ``aws_json`` is the one
SigV4-signed JSON call both services take, through the bridge's own HTTP client.
"""

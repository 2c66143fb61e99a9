"""The design document's handler, rebuilt for comparison (benchmarks only, never shipped).

It does what the design does on every invocation: read the secret from Secrets Manager, ask Okta
for a new token (client_secret_post, as the design's form body does), call the API, with a module
level boto3 client and ``requests.Session`` (so connections are kept alive, as in the design).
Certificates are verified against ``REQUESTS_CA_BUNDLE``, like any ``requests`` caller.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import requests

SECRET_ID = os.environ.get("NAIVE_SECRET_ID", "prod/okta_api_creds")

secrets_client = boto3.client("secretsmanager")
session = requests.Session()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Secret, token, API: three round trips, every time."""
    secret = json.loads(secrets_client.get_secret_value(SecretId=SECRET_ID)["SecretString"])
    answer = session.post(
        secret["token_url"],
        headers={"Accept": "application/json"},
        data={
            "grant_type": "client_credentials",
            "client_id": secret["client_id"],
            "client_secret": secret["client_secret"],
            "scope": "api.access",
        },
        timeout=10,
    )
    answer.raise_for_status()
    token = answer.json()["access_token"]
    data = session.get(
        secret["api_endpoint"],
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=15,
    )
    data.raise_for_status()
    return {"statusCode": 200, "body": data.json()}

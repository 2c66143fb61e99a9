"""``make demo`` (``okta-bridge demo``): the real Lambda handler against the local stack, one
cold call then warm ones: reads, a POST search, a GraphQL-like POST, a whole collection and a
20 MB export that goes to S3 (moto's, over TLS) because Lambda could not return it.

It prints the API's JSON and, per invocation, what each upstream served: Secrets Manager reads,
Okta token requests, API requests. The contract it checks: 1/1/1 cold, 0/0/1 warm (a collection:
one API request per page).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from okta_bridge import handler
from okta_bridge_dev.emulators.sample_resources import ITEMS
from okta_bridge_dev.emulators.stack import LocalStack

SECRET_NAME = "prod/okta_api_creds"  # noqa: S105 - the design document's secret name
COLD = (1, 1, 1)
WARM = (0, 0, 1)


@dataclass
class DemoContext:
    """The parts of Lambda's context the bridge reads: a request id and the time left."""

    aws_request_id: str
    timeout_ms: int = 30_000

    def __post_init__(self) -> None:
        self._end = time.monotonic() + self.timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


# Callers behind API Gateway or a Function URL carry the identity AWS authenticated (IAM auth
# here); the bridge refuses proxy events without one.
CALLER_ARN = "arn:aws:sts::123456789012:assumed-role/reporting-app/demo"

PAGE_SIZE = 20
EXPORT_BYTES = 20_000_000
ROUTES = "GET /v1/export, POST /v1/search, POST /graphql"

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("direct {}", {}),
    ("direct {}", {}),
    ("direct /v1/items?page=2", {"path": "/v1/items", "query": {"page": "2", "page_size": "3"}}),
    (
        "HTTP API v2 /v1/items/7",
        {
            "version": "2.0",
            "rawPath": "/v1/items/7",
            "rawQueryString": "",
            "requestContext": {
                "http": {"method": "GET", "path": "/v1/items/7"},
                "authorizer": {"iam": {"userArn": CALLER_ARN}},
            },
        },
    ),
    (
        "REST API v1 /v1/items",
        {
            "httpMethod": "GET",
            "path": "/v1/items",
            "queryStringParameters": {"page": "3"},
            "requestContext": {"stage": "prod", "identity": {"userArn": CALLER_ARN}},
        },
    ),
    ("direct POST /v1/search", {"method": "POST", "path": "/v1/search", "body": {"q": "item-1"}}),
    (
        "direct POST /graphql",
        {"method": "POST", "path": "/graphql", "body": {"query": "{ items(first: 2) { id } }"}},
    ),
    (
        "direct /v1/items all pages",
        {"path": "/v1/items", "query": {"page_size": str(PAGE_SIZE)}, "paginate": True},
    ),
    ("direct /v1/export -> S3", {"path": "/v1/export", "query": {"bytes": str(EXPORT_BYTES)}}),
]
# API requests per call: one, but a collection's one per page.
PAGES = -(-len(ITEMS) // PAGE_SIZE)


def _counts(stack: LocalStack) -> tuple[int, int, int]:
    return (
        stack.secrets_manager.counts["GetSecretValue"],
        stack.okta.counts["token"],
        sum(stack.api.counts.values()),
    )


def run(kind: str, verbose: bool) -> int:
    """Start the stack, invoke the handler, print the data and the table; 0 if the counts hold."""
    kind = "kms-rs256" if kind == "kms" else kind
    print("Starting the local stack (private CA, Secrets Manager, Okta-like server, API)...")
    with LocalStack() as stack:
        secret_id = stack.store_secret(kind, SECRET_NAME)
        os.environ.update(stack.environment(secret_id, delivery=True))
        os.environ["BRIDGE_ALLOWED_PATHS"] = "/v1/data,/v1/items,/v1/items/*"
        os.environ["BRIDGE_ALLOWED_ROUTES"] = ROUTES
        os.environ["BRIDGE_LOG_LEVEL"] = "INFO" if verbose else "WARNING"
        os.environ["BRIDGE_METRICS"] = "on" if verbose else "off"  # the table says the counts
        handler.set_bridge(None)
        stack.reset_counts()
        print(f"  secret {secret_id!r} stored ({kind}); token URL {stack.okta.token_url}")
        print(f"  API {stack.api.base_url}; every hop is TLS, verified against the local CA\n")

        rows: list[tuple[int, str, str, int, tuple[int, int, int], float]] = []
        for number, (label, event) in enumerate(CALLS, start=1):
            before = _counts(stack)
            started = time.perf_counter()
            answer = handler.lambda_handler(event, DemoContext(str(uuid.uuid4())))
            elapsed = (time.perf_counter() - started) * 1000
            after = _counts(stack)
            delta = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
            rows.append((number, "cold" if number == 1 else "warm", label,
                         answer["statusCode"], delta, elapsed))  # fmt: skip
            if number == 1:
                print("The API's JSON (first, cold invocation):")
                print(json.dumps(answer.get("body"), indent=2)[:2000])
                print()
            if number == 1 and kind.startswith("kms-"):
                print(f"kms:Sign calls: {stack.kms.counts['Sign']} (one per token request; no "
                      "private key in the secret or in the function)\n")  # fmt: skip
            if isinstance(answer.get("body"), dict) and "delivery" in answer["body"]:
                shown = dict(answer["body"]["delivery"], url="(presigned GET URL)")
                print(f"{label}: {EXPORT_BYTES:,} bytes, delivered through S3:")
                print(json.dumps(shown, indent=2) + "\n")
        handler.set_bridge(None)

    print(f"{'#':>2}  {'start':5}  {'event':26} {'status':>6}  {'secret':>6} {'token':>5} "
          f"{'api':>3}  {'ms':>7}")  # fmt: skip
    for number, start, label, status, (s, t, a), ms in rows:
        print(f"{number:>2}  {start:5}  {label:26} {status:>6}  {s:>6} {t:>5} {a:>3}  {ms:7.1f}")
    expected = [COLD, *([WARM] * (len(rows) - 1))]
    expected[-2] = (0, 0, PAGES)  # the whole collection
    ok = all(status == 200 for _, _, _, status, _, _ in rows)
    ok = ok and [row[4] for row in rows] == expected
    print()
    if ok:
        print(
            "OK: the cold call made 1/1/1 upstream requests, each warm call 0/0/1 "
            f"(the collection 0/0/{PAGES}: one per page)."
        )
        return 0
    print(
        f"FAILED: expected 1/1/1 cold and 0/0/1 warm (0/0/{PAGES} for the collection), all with "
        "status 200.",
        file=sys.stderr,
    )
    return 1

"""One call of an AWS JSON-protocol API (DynamoDB, KMS), SigV4-signed, through the bridge's client.

The same way the secret is read (``secret.sources``) and client assertions are signed in KMS
(``auth.kms_signing``): no boto3 on the cold path (its import alone would cost more than the
cache saves), verified TLS with the bridge's CA bundle, the deadline, retries of throttling and
server faults. Every refusal is a ``CacheError`` naming the service, the action and AWS's error
type only: AWS's messages name principals and keys, and are not for a caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from okta_bridge import config
from okta_bridge.auth.kms_signing import kms_url
from okta_bridge.config import Settings
from okta_bridge.errors import BridgeError, CacheError, ConfigError
from okta_bridge.secret.sigv4 import Credentials, error_type, service_host, sign_post
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, ResponseTooLarge, Target

MAX_ANSWER = 65_536  # a cache item is a few KB
CALL_SECONDS = 2.0  # one call's share of the invocation: the cache must never cost the deadline
THROTTLING = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)


class AwsJsonApi:
    """Signed POSTs of ``{prefix}.{Action}`` to one AWS service endpoint."""

    def __init__(
        self,
        http: HttpClient,
        *,
        label: str,
        url: str,
        region: str,
        service: str,
        target_prefix: str,
        content_type: str,
        credentials: Callable[[], Credentials | None] = config.aws_credentials,
    ) -> None:
        self._http = http
        self.label = label
        self.url = url.rstrip("/") + "/"
        self._region = region
        self._service = service
        self._prefix = target_prefix
        self._content_type = content_type
        self._credentials = credentials
        self.target = Target(label, "TOKEN_CACHE_UNREACHABLE", "TOKEN_CACHE_TIMEOUT", CacheError)

    def call(self, action: str, payload: Mapping[str, Any], deadline: Deadline) -> dict[str, Any]:
        """AWS's answer to ``action``; raises ``CacheError`` (``aws_code`` set when AWS refused)."""
        body = json.dumps(payload, separators=(",", ":")).encode()

        def prepare() -> tuple[dict[str, str], bytes]:
            found = self._credentials()
            if found is None:
                raise CacheError(
                    "TOKEN_CACHE_REFUSED",
                    f"No AWS credentials in the environment to call {self.label}.",
                    aws_code="MissingCredentials",
                )
            headers = {
                "Content-Type": self._content_type,
                "X-Amz-Target": f"{self._prefix}.{action}",
            }
            signed = sign_post(
                self.url,
                headers,
                body,
                credentials=found,
                region=self._region,
                service=self._service,
            )
            return signed, body

        budget = Deadline(max(0.001, min(deadline.remaining(), CALL_SECONDS)))
        try:
            answer = self._http.request(
                "POST",
                self.url,
                target=self.target,
                deadline=budget,
                prepare=prepare,
                max_bytes=MAX_ANSWER,
                retry_when=_transient,
            )
        except ResponseTooLarge:
            raise CacheError(
                "TOKEN_CACHE_REFUSED", f"{self.label}'s answer to {action} was too large."
            ) from None
        except CacheError:
            raise
        except BridgeError as exc:  # TLS and the like: the cache's failure, never the caller's
            raise CacheError(
                "TOKEN_CACHE_UNREACHABLE", f"{self.label} could not be called ({exc.code})."
            ) from exc
        document = answer.json_object()
        if answer.status != 200:
            error = error_type(document or {}) or f"HTTP{answer.status}"
            raise CacheError(
                "TOKEN_CACHE_REFUSED", f"{self.label} refused {action}: {error}.", aws_code=error
            )
        if document is None:
            raise CacheError(
                "TOKEN_CACHE_REFUSED", f"{self.label}'s answer to {action} is not JSON."
            )
        return document


def _transient(answer: HttpResponse) -> bool:
    """Throttling (HTTP 400) and server faults (HTTP 500) get another attempt in the budget."""
    if answer.status >= 500:
        return True
    return answer.status == 400 and error_type(answer.json_object() or {}) in THROTTLING


def dynamodb_api(settings: Settings, http: HttpClient) -> AwsJsonApi:
    """DynamoDB's JSON 1.0 API in the function's region (``AWS_ENDPOINT_URL_DYNAMODB``)."""
    region = _region(settings)
    cache = settings.token_cache
    url = (
        cache.endpoint if cache is not None else None
    ) or f"https://{service_host('dynamodb', region, fips=settings.aws.fips)}/"
    return AwsJsonApi(
        http,
        label="DynamoDB",
        url=url,
        region=region,
        service="dynamodb",
        target_prefix="DynamoDB_20120810",
        content_type="application/x-amz-json-1.0",
    )


def kms_api(settings: Settings, http: HttpClient) -> AwsJsonApi:
    """KMS's JSON 1.1 API in the function's region (``AWS_ENDPOINT_URL_KMS``)."""
    region = _region(settings)
    return AwsJsonApi(
        http,
        label="AWS KMS",
        url=kms_url(settings, region),
        region=region,
        service="kms",
        target_prefix="TrentService",
        content_type="application/x-amz-json-1.1",
    )


def _region(settings: Settings) -> str:
    if not settings.aws.region:
        raise ConfigError("AWS_REGION", "is required for BRIDGE_TOKEN_CACHE (Lambda sets it)")
    return settings.aws.region

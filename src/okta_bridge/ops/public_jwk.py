"""The ``Custom::PublicJwk`` resource of template.yaml: the public JWK of the stack's KMS signing
key (``kid`` = its RFC 7638 thumbprint), for the ``KmsPublicJwk`` output.

CloudFormation sends Create, Update and Delete, then waits for an answer PUT to the presigned
``ResponseURL``; without one the stack waits for the resource's ``ServiceTimeout``. So every
invocation answers, ``FAILED`` with a one-line reason (never a traceback) on any error, and
before the function's own deadline: KMS gets the time left minus what the answer needs. Delete
does nothing and needs no KMS: the key is a resource of its own.

The JWK is ``okta_bridge.auth.jwk.public_jwk`` of ``kms:GetPublicKey``'s DER, the same one
``make okta-jwk`` prints and a rotation registers. boto3 (in the Lambda runtime and the zip) is
imported here, on the first call, never by the bridge.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["PublicJwkError", "answer", "kms_public_key", "lambda_handler", "send"]

log = logging.getLogger(__name__)

ANSWER_SECONDS: Final = 5.0
"""Kept for the PUT of the answer out of the time the invocation has left."""
DEFAULT_SECONDS: Final = 30.0
"""The time left when the context does not say (a direct call)."""
REASON_LIMIT: Final = 300
"""CloudFormation's whole answer must stay under 4 KB; a reason is one short line."""
NOT_CREATED: Final = "public-jwk-not-created"


class PublicJwkError(Exception):
    """An expected failure, its message the reason CloudFormation shows."""


def lambda_handler(event: Mapping[str, Any], context: Any) -> None:
    """Answer CloudFormation's request (every time, before the deadline); never raise."""
    started = time.monotonic()
    seconds = _remaining_seconds(context)
    url = str(event.get("ResponseURL", ""))

    def public_key(key_id: str) -> bytes:
        elapsed = time.monotonic() - started
        return kms_public_key(key_id, seconds - elapsed - ANSWER_SECONDS)

    body = answer(event, public_key)
    log.info(
        "custom resource answer",
        extra={
            "request_type": event.get("RequestType"),
            "status": body["Status"],
            "reason": body.get("Reason"),
            "kid": body.get("Data", {}).get("Kid"),
        },
    )
    left = seconds - (time.monotonic() - started) - 0.5
    try:
        send(url, body, max(1.0, min(ANSWER_SECONDS, left)))
    except (OSError, ValueError) as exc:  # nothing else can tell CloudFormation now
        log.error("could not answer CloudFormation: %s", type(exc).__name__)  # noqa: TRY400


def answer(event: Mapping[str, Any], public_key: Callable[[str], bytes]) -> dict[str, Any]:
    """CloudFormation's answer to ``event``: SUCCESS with ``Data {Jwk, Kid}``, or FAILED with a
    reason. ``public_key`` reads the key's DER public key (only for Create and Update)."""
    from okta_bridge.auth.jwk import public_jwk  # noqa: PLC0415 - cryptography, on demand

    body: dict[str, Any] = {
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "PhysicalResourceId": str(event.get("PhysicalResourceId") or NOT_CREATED),
    }
    if event.get("RequestType") == "Delete":
        return {**body, "Status": "SUCCESS"}
    try:
        key_id = _key_id(event)
        try:
            jwk = public_jwk(public_key(key_id))
        except ValueError as exc:
            raise PublicJwkError(f"{key_id} cannot sign Okta client assertions: {exc}") from exc
    except PublicJwkError as exc:
        return {**body, "Status": "FAILED", "Reason": _one_line(str(exc))}
    except Exception as exc:  # CloudFormation must hear of it, without a traceback
        reason = f"internal error ({type(exc).__name__}); see the function's log"
        log.exception("public JWK failed")
        return {**body, "Status": "FAILED", "Reason": reason}
    text = json.dumps(jwk, separators=(",", ":"))
    return {
        **body,
        "Status": "SUCCESS",
        "PhysicalResourceId": jwk["kid"],
        "Data": {"Jwk": text, "Kid": jwk["kid"]},
    }


def _key_id(event: Mapping[str, Any]) -> str:
    """The KeyId property of a Create or Update request."""
    request_type = event.get("RequestType")
    if request_type not in ("Create", "Update"):
        raise PublicJwkError(f"unknown RequestType {str(request_type)[:40]!r}")
    properties = event.get("ResourceProperties")
    key_id = properties.get("KeyId") if isinstance(properties, Mapping) else None
    if not isinstance(key_id, str) or not key_id:
        raise PublicJwkError("the resource's KeyId property is missing")
    return key_id


def kms_public_key(key_id: str, seconds: float) -> bytes:
    """The DER public key of an asymmetric signing key (``kms:GetPublicKey``), within
    ``seconds``; PublicJwkError with KMS's error code and message otherwise."""
    import boto3  # noqa: PLC0415 - deferred: boto3 costs ~200 ms to import
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    if seconds < 1.0:
        raise PublicJwkError("no time left to ask KMS for the public key")
    attempt = seconds / 4  # two attempts, each a connect and a read
    config = Config(
        connect_timeout=attempt,
        read_timeout=attempt,
        retries={"mode": "standard", "max_attempts": 2},
    )
    try:
        found = boto3.client("kms", config=config).get_public_key(KeyId=key_id)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PublicJwkError(
            f"KMS refused GetPublicKey on {key_id}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise PublicJwkError(f"KMS could not be reached: {type(exc).__name__}") from None
    if found.get("KeyUsage") != "SIGN_VERIFY":
        raise PublicJwkError(f"{key_id} is not a signing key (KeyUsage {found.get('KeyUsage')})")
    public = found.get("PublicKey")
    if not isinstance(public, bytes):
        raise PublicJwkError(f"KMS answered no public key for {key_id}")
    return public


def send(url: str, body: Mapping[str, Any], seconds: float) -> None:
    """PUT the answer to CloudFormation's presigned HTTPS URL (an S3 URL: AWS_CA_BUNDLE, boto3's
    CA bundle for AWS endpoints, applies when set). The URL is a credential: never logged."""
    if not url.startswith("https://"):
        raise ValueError("the ResponseURL is not an https:// URL")
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - https only, checked above
        url,
        data=data,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(data))},
    )
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
    opened = urllib.request.urlopen(request, timeout=seconds, context=context)  # noqa: S310  # nosec B310
    with opened as response:
        response.read()


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else DEFAULT_SECONDS


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 3] + "..."

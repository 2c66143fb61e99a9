"""The five S3 requests delivery needs, SigV4-signed, through the bridge's own ``HttpClient``.

PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload and AbortMultipartUpload,
plus the presigned GET URL. boto3's S3 client would add its import and client creation to the
invocation that first delivers (hundreds of ms); these are five small REST calls, signed by
``okta_bridge.secret.sigv4`` (tested against botocore) and sent with verified TLS, the proxy,
the deadline and the retry policy every other hop gets.

S3's answers are mapped to ``DeliveryError`` here: 403, ``AccessDenied`` and KMS refusals are
``DELIVERY_DENIED``; any other failure, including a 200 whose body is an ``<Error>`` (how
CompleteMultipartUpload reports a failure after it started answering), is ``DELIVERY_FAILED``
naming S3's error code. 500 and 503 answers (and such a 200 with S3's retryable codes) are
retried like any transient answer.
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence

from okta_bridge.config import Settings
from okta_bridge.errors import DeliveryError
from okta_bridge.secret.sigv4 import Credentials, presign, service_host, sign
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, ResponseTooLarge, Target

S3_TARGET = Target("S3", "DELIVERY_UNREACHABLE", "DELIVERY_TIMEOUT", DeliveryError)
MAX_S3_ANSWER = 65_536  # S3 answers these calls with a few hundred bytes of XML
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
_RETRYABLE_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable"})
_CODE = re.compile(rb"<Code>([^<]{1,200})</Code>")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]{1,1024})</UploadId>")
_SAFE_CODE = re.compile(r"[^A-Za-z0-9._-]")


class S3Api:
    """Signed S3 object requests for one bucket (``settings.delivery``), path-style on a custom
    endpoint (``AWS_ENDPOINT_URL_S3``), else virtual-hosted (path-style for dotted buckets,
    whose names do not fit S3's wildcard certificate)."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        *,
        credentials: Callable[[], Credentials | None],
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._delivery = settings.delivery
        self._http = http
        self._credentials = credentials
        self._clock = clock

    @property
    def bucket(self) -> str:
        """The delivery bucket; ``DELIVERY_NOT_CONFIGURED`` when none is set."""
        bucket = self._delivery.bucket
        if bucket is None:
            raise DeliveryError(
                "DELIVERY_NOT_CONFIGURED", "No BRIDGE_DELIVERY_BUCKET is set to deliver to."
            )
        return bucket

    def object_url(self, key: str) -> str:
        """The object's URL (its key URI-encoded once, as S3 signs it)."""
        path = urllib.parse.quote(key, safe="/~")
        endpoint = self._delivery.endpoint
        if endpoint is not None:
            return f"{endpoint.rstrip('/')}/{self.bucket}/{path}"
        region = self._region()
        host = service_host("s3", region, fips=self._settings.aws.fips)
        if "." in self.bucket:
            return f"https://{host}/{self.bucket}/{path}"
        return f"https://{self.bucket}.{host}/{path}"

    # -- the requests ----------------------------------------------------------------------

    def put_object(self, key: str, body: bytes, *, content_type: str, deadline: Deadline) -> None:
        """One PutObject of the whole (small) object, SSE-KMS."""
        headers = {"Content-Type": content_type, **self._encryption()}
        self._send("PutObject", "PUT", key, headers=headers, body=body, deadline=deadline)

    def create_upload(self, key: str, *, content_type: str, deadline: Deadline) -> str:
        """CreateMultipartUpload, SSE-KMS; its upload id."""
        headers = {"Content-Type": content_type, **self._encryption()}
        answer = self._send(
            "CreateMultipartUpload",
            "POST",
            key,
            query="uploads",
            headers=headers,
            deadline=deadline,
        )
        found = _UPLOAD_ID.search(answer.body)
        if found is None:
            raise DeliveryError(
                "DELIVERY_FAILED", "S3's answer to CreateMultipartUpload has no UploadId."
            )
        return found.group(1).decode("ascii", "replace")

    def upload_part(
        self, key: str, upload_id: str, number: int, body: memoryview, *, deadline: Deadline
    ) -> str:
        """UploadPart ``number`` (from 1); the part's ETag, which Complete needs."""
        query = f"partNumber={number}&uploadId={_encode(upload_id)}"
        answer = self._send(
            "UploadPart", "PUT", key, query=query, headers={}, body=body, deadline=deadline
        )
        etag = answer.header("etag")
        if not etag:
            raise DeliveryError("DELIVERY_FAILED", "S3's answer to UploadPart has no ETag.")
        return etag

    def complete(
        self, key: str, upload_id: str, etags: Sequence[str], *, deadline: Deadline
    ) -> None:
        """CompleteMultipartUpload with the parts' ETags, in order."""
        parts = "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{_xml_text(etag)}</ETag></Part>"
            for number, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        query = f"uploadId={_encode(upload_id)}"
        headers = {"Content-Type": "application/xml"}
        self._send(
            "CompleteMultipartUpload", "POST", key,
            query=query, headers=headers, body=body, deadline=deadline,
        )  # fmt: skip

    def abort(self, key: str, upload_id: str, *, deadline: Deadline) -> None:
        """AbortMultipartUpload: S3 drops the parts (the bucket's lifecycle would, after a day)."""
        query = f"uploadId={_encode(upload_id)}"
        self._send(
            "AbortMultipartUpload", "DELETE", key, query=query, headers={}, deadline=deadline
        )

    def presigned_get(self, key: str) -> tuple[str, str]:
        """A presigned GET URL for the object and when it expires (ISO 8601 UTC).

        With temporary credentials (Lambda's) the URL also stops working when they expire,
        which is after ``BRIDGE_DELIVERY_URL_SECONDS`` (at most an hour) in practice."""
        now = self._clock()
        seconds = self._delivery.url_seconds
        url = presign(
            "GET",
            self.object_url(key),
            expires=seconds,
            credentials=self._signing_credentials(),
            region=self._region(),
            now=now,
        )
        expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(now) + seconds))
        return url, expires_at

    # -- sending ---------------------------------------------------------------------------

    def _send(
        self,
        action: str,
        method: str,
        key: str,
        *,
        query: str = "",
        headers: dict[str, str],
        body: bytes | memoryview = b"",
        deadline: Deadline,
    ) -> HttpResponse:
        """One signed request (signed afresh per attempt); S3's failures raised as
        ``DeliveryError``. Every call is safe to repeat: a part or object is rewritten with the
        same bytes, and a repeated CreateMultipartUpload leaves an unused upload that the
        bucket's lifecycle rule aborts after a day."""
        url = self.object_url(key) + (f"?{query}" if query else "")
        payload_hash = hashlib.sha256(body).hexdigest()  # once, not per attempt
        region = self._region()

        def prepare() -> tuple[dict[str, str], bytes | memoryview]:
            signed = sign(
                method,
                url,
                headers,
                payload_hash=payload_hash,
                credentials=self._signing_credentials(),
                region=region,
                service="s3",
                now=self._clock(),
            )
            return signed, body

        try:
            answer = self._http.request(
                method,
                url,
                target=S3_TARGET,
                deadline=deadline,
                prepare=prepare,
                max_bytes=MAX_S3_ANSWER,
                retry_when=_retryable,
            )
        except ResponseTooLarge:
            raise DeliveryError(
                "DELIVERY_FAILED", f"S3's answer to {action} is larger than {MAX_S3_ANSWER} bytes."
            ) from None
        failure = _failure(action, answer, f"s3://{self.bucket}/{key}")
        if failure is not None:
            raise failure
        return answer

    def _encryption(self) -> dict[str, str]:
        headers = {"x-amz-server-side-encryption": "aws:kms"}
        if self._delivery.kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self._delivery.kms_key_id
        return headers

    def _signing_credentials(self) -> Credentials:
        found = self._credentials()  # read at each use: they change after a SnapStart restore
        if found is None:
            raise DeliveryError(
                "DELIVERY_DENIED", "No AWS credentials in the environment to sign S3 requests."
            )
        return found

    def _region(self) -> str:
        region = self._settings.aws.region
        if not region:
            raise DeliveryError("DELIVERY_DENIED", "AWS_REGION is not set; Lambda sets it.")
        return region


def error_code(body: bytes) -> str | None:
    """S3's ``<Code>`` in an XML error body, reduced to safe characters; None without one."""
    found = _CODE.search(body[:4096])
    if found is None:
        return None
    code = _SAFE_CODE.sub("", found.group(1).decode("ascii", "replace"))[:64]
    return code or None


def _failure(action: str, answer: HttpResponse, where: str) -> DeliveryError | None:
    status = answer.status
    code = error_code(answer.body)
    if 200 <= status < 300 and (code is None or b"<Error>" not in answer.body[:4096]):
        return None
    named = code or f"HTTP{status}"
    if status == 403 or named in _DENIED_CODES or named.startswith("KMS."):
        return DeliveryError(
            "DELIVERY_DENIED", f"S3 refused {action} on {where}: {named} (HTTP {status})."
        )
    return DeliveryError(
        "DELIVERY_FAILED", f"S3 failed {action} on {where}: {named} (HTTP {status})."
    )


def _retryable(answer: HttpResponse) -> bool:
    """500s, and a 200 carrying S3's ``InternalError``/``SlowDown`` (503s are retried anyway)."""
    if answer.status == 500:
        return True
    return (
        answer.status == 200
        and b"<Error>" in answer.body[:4096]
        and error_code(answer.body) in _RETRYABLE_CODES
    )


def _encode(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def _xml_text(value: str) -> str:
    """``value`` as XML character data (an ETag is quoted: ``"..."``). Written here because
    ``xml.sax.saxutils`` costs 3 ms of imports on the first large answer for one ``escape``."""
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )

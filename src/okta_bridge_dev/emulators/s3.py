"""moto's S3 served over real TLS, with per-action counters and injected S3 errors.

The bridge writes large answers here (``okta_bridge.delivery``) with its own SigV4-signed HTTPS
requests, path-style (``AWS_ENDPOINT_URL_S3``); tests read objects back through the presigned URL
or directly (``object_bytes``), and see multipart uploads left in progress (``uploads``).
``inject_error`` answers an action with S3's XML error, also with status 200 as
CompleteMultipartUpload may fail. moto accepts SSE-KMS headers naming any key id without a KMS
key of its own, so the stack's ``kms_key_arn`` is a well-formed ARN and nothing more.
"""

from __future__ import annotations

import ssl
import urllib.parse
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from moto.s3.models import s3_backends

from okta_bridge_dev.emulators.moto_tls import InjectedError, MotoTlsServer, drain, reason

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["DELIVERY_BUCKET", "S3Server", "s3_action"]

DELIVERY_BUCKET = "okta-bridge-delivery-local"
_REGION = "us-east-1"
_PARTITION = "aws"

_OBJECT_ACTIONS = {
    ("PUT", False): "PutObject",
    ("PUT", True): "UploadPart",
    ("POST", True): "CompleteMultipartUpload",
    ("DELETE", False): "DeleteObject",
    ("DELETE", True): "AbortMultipartUpload",
    ("GET", False): "GetObject",
    ("GET", True): "ListParts",
    ("HEAD", False): "HeadObject",
}
_BUCKET_ACTIONS = {"PUT": "CreateBucket", "GET": "ListObjects", "HEAD": "HeadBucket",
                   "DELETE": "DeleteBucket"}  # fmt: skip


def s3_action(method: str, path: str, query: str) -> str:
    """The S3 API action a path-style request is (``UploadPart``, ``GetObject``...)."""
    names = urllib.parse.parse_qs(query, keep_blank_values=True)
    bucket, _, key = path.lstrip("/").partition("/")
    method = method.upper()
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "GET" and "uploads" in names:
            return "ListMultipartUploads"
        return _BUCKET_ACTIONS.get(method, f"{method}Bucket")
    if method == "POST" and "uploads" in names:
        return "CreateMultipartUpload"
    return _OBJECT_ACTIONS.get((method, "uploadId" in names), f"{method}Object")


class S3Server(MotoTlsServer):
    """moto S3 on ``https://host:port``, path-style, in an AWS account of its own.

    ``counts`` is keyed by S3 action (``PutObject``, ``UploadPart``,
    ``CompleteMultipartUpload``...), faulted requests included. Buckets this server created are
    forgotten on ``stop()``: moto's bucket names are global to the process, as S3's are to a
    partition.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
        self.kms_key_arn = f"arn:aws:kms:{_REGION}:{self.account_id}:key/{uuid.uuid4()}"

    def stop(self) -> None:
        """Stop serving and forget this server's buckets and objects."""
        super().stop()
        backend = self._backend()
        for bucket in list(backend.buckets.values()):
            for key in bucket.keys.values():
                key.dispose()
            for upload in bucket.multiparts.values():
                upload.dispose()
            if s3_backends.bucket_accounts.get(bucket.name) == (_PARTITION, self.account_id):
                del s3_backends.bucket_accounts[bucket.name]
        backend.buckets.clear()

    # -- faults ----------------------------------------------------------------------------

    def inject_error(
        self,
        action: str,
        status: int,
        code: str,
        times: int = 1,
        message: str = "Injected by the test.",
    ) -> None:
        """Answer the next ``times`` calls of ``action`` with S3's XML error ``code`` and
        ``status`` (200 too: CompleteMultipartUpload reports some failures in a 200's body)."""
        self._inject(InjectedError(action, code, message, status, times))

    # -- state, read without going through HTTP ----------------------------------------------

    def create_bucket(self, name: str = DELIVERY_BUCKET) -> str:
        """Create bucket ``name`` in this server's account (not counted); return its name.

        moto's bucket names are global to the process (``bucket_accounts``), so a second stack's
        bucket of the same name would be refused; each server keeps its own instead, and the
        name stays registered to whichever server had it first."""
        owner = s3_backends.bucket_accounts.pop(name, None)
        try:
            self._backend().create_bucket(name, _REGION)
        finally:
            if owner is not None:
                s3_backends.bucket_accounts[name] = owner
        return name

    def object_bytes(self, key: str, bucket: str = DELIVERY_BUCKET) -> bytes:
        """The stored object's bytes (KeyError when there is none)."""
        return bytes(self._object(key, bucket).value)

    def object_info(self, key: str, bucket: str = DELIVERY_BUCKET) -> dict[str, Any]:
        """What S3 recorded with the object: size, content type and server-side encryption."""
        found = self._object(key, bucket)
        return {
            "size": found.size,
            "content_type": found.metadata.get("Content-Type"),
            "encryption": found.encryption,
            "kms_key_id": found.kms_key_id,
            "multipart": found.multipart is not None,
        }

    def keys(self, bucket: str = DELIVERY_BUCKET) -> list[str]:
        """The keys of the objects in ``bucket``, sorted."""
        return sorted(self._backend().get_bucket(bucket).keys.keys())

    def uploads(self, bucket: str = DELIVERY_BUCKET) -> list[str]:
        """The keys of multipart uploads started and neither completed nor aborted."""
        found = self._backend().list_multipart_uploads(bucket)
        return sorted(upload.key_name for upload in found.values())

    def _object(self, key: str, bucket: str) -> Any:
        found = self._backend().get_object(bucket, key)
        if found is None:
            raise KeyError(f"s3://{bucket}/{key}")
        return found

    def _backend(self) -> Any:
        return s3_backends[self.account_id][_PARTITION]

    # -- WSGI ------------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        action = s3_action(
            str(environ.get("REQUEST_METHOD", "GET")),
            str(environ.get("PATH_INFO", "/")),
            str(environ.get("QUERY_STRING", "")),
        )
        injected = self._count(action)
        if injected is None:
            return self._moto(environ, start_response)
        drain(environ)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(injected.code)}</Code>"
            f"<Message>{escape(injected.message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
        ).encode()
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""
        start_response(
            f"{injected.status} {reason(injected.status)}",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

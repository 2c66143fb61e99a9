"""A stand-in for the AWS Parameters and Secrets Lambda Extension, on loopback.

The real extension is a process in the Lambda sandbox answering plain HTTP on
``localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` (2773): ``GET /secretsmanager/get?secretId=``
(and ``versionStage``/``versionId``) with the header ``X-Aws-Parameters-Secrets-Token`` equal to the
function's ``AWS_SESSION_TOKEN``, answering GetSecretValue's JSON from a cache it refreshes every
``SECRETS_MANAGER_TTL`` seconds (300 at most). This one behaves the same over the local stack's
Secrets Manager, including the cache (so a test sees the staleness a rotation meets) and the 401
for a missing or wrong token.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlsplit

from okta_bridge_dev.emulators.servers import Lifecycle

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["SecretsExtension"]

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name
DEFAULT_TTL = 300.0


class SecretsExtension(Lifecycle):
    """``GET /secretsmanager/get`` over ``client`` (a boto3 Secrets Manager client), cached.

    ``counts`` holds "get" (answered requests), "miss" (cache misses that called Secrets Manager)
    and "refused" (wrong or missing token).
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        *,
        session_token: str,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._client = client
        self.session_token = session_token
        self.ttl = ttl
        self._clock = clock
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def port(self) -> int:
        """The bound port (the real extension's is PARAMETERS_SECRETS_EXTENSION_HTTP_PORT)."""
        if self._server is None:
            raise RuntimeError("start() first")
        return int(self._server.server_address[1])

    def environment(self) -> dict[str, str]:
        """What Lambda gives a function that has the extension layer."""
        return {
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.port),
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def start(self) -> Self:
        """Serve on a daemon thread (port 0 picks a free port)."""
        with self._lock:
            if self._server is None:
                server = ThreadingHTTPServer((self._host, self._requested_port), self._handler())
                server.daemon_threads = True
                self._server = server
                self._requested_port = int(server.server_address[1])
                self._thread = threading.Thread(
                    target=server.serve_forever, name="secrets-extension", daemon=True
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the socket."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def clear_cache(self) -> None:
        """Forget every cached value (a new execution environment)."""
        with self._lock:
            self._cache.clear()

    def answer(self, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request (the HTTP handler's logic)."""
        if token != self.session_token:
            with self._lock:
                self.counts["refused"] += 1
            return 401, {"message": "missing or wrong X-Aws-Parameters-Secrets-Token"}
        parts = urlsplit(path)
        if parts.path != "/secretsmanager/get":
            return 404, {"message": "not found"}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        secret_id = query.get("secretId")
        if not secret_id:
            return 400, {"message": "secretId is required"}
        key = (secret_id, query.get("versionStage", ""), query.get("versionId", ""))
        with self._lock:
            self.counts["get"] += 1
            cached = self._cache.get(key)
            if cached is not None and self._clock() - cached[0] < self.ttl:
                return 200, cached[1]
        try:
            body = self._fetch(secret_id, query)
        except self._client.exceptions.ResourceNotFoundException as exc:
            return 400, {"message": str(exc)}
        with self._lock:
            self.counts["miss"] += 1
            self._cache[key] = (self._clock(), body)
        return 200, body

    def _fetch(self, secret_id: str, query: dict[str, str]) -> dict[str, Any]:
        arguments: dict[str, str] = {"SecretId": secret_id}
        if "versionStage" in query:
            arguments["VersionStage"] = query["versionStage"]
        if "versionId" in query:
            arguments["VersionId"] = query["versionId"]
        answer = self._client.get_secret_value(**arguments)
        return {
            "ARN": answer["ARN"],
            "Name": answer["Name"],
            "VersionId": answer["VersionId"],
            "SecretString": answer.get("SecretString"),
            "VersionStages": list(answer.get("VersionStages", [])),
            "CreatedDate": answer["CreatedDate"].isoformat(),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        extension = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body = extension.answer(self.path, self.headers.get(TOKEN_HEADER))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

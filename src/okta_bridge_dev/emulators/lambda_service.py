"""Lambda's Invoke API over real TLS, calling registered Python handlers in this process.

moto's Lambda runs functions in Docker; the CLI's ``invoke`` and ``diagnose`` need only the one
operation, so this emulator implements ``POST /2015-03-31/functions/{FunctionName}/invocations``
as AWS answers it to an unmodified boto3 client (``AWS_ENDPOINT_URL_LAMBDA`` and the stack's CA
bundle): the payload is the event, the handler gets a context with ``aws_request_id`` and
``get_remaining_time_in_millis``; a handler that raises is answered 200 with
``X-Amz-Function-Error: Unhandled`` and an ``errorMessage``/``errorType`` body; an unknown
function is a 404 ``ResourceNotFoundException``. ``RequestResponse`` and ``DryRun`` invocations
only; the function's timeout is what the context reports, not enforced (the handler runs on the
connection's thread and cannot be stopped).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.config import Config

from okta_bridge_dev.emulators.routing import PathRoute, RecordedRequest, Response
from okta_bridge_dev.emulators.secretsmanager import DUMMY_CREDENTIAL, REGION
from okta_bridge_dev.emulators.servers import TLSServer

__all__ = ["DEFAULT_ACCOUNT", "LambdaContext", "LambdaHandler", "LambdaServer"]

LambdaHandler = Callable[[Any, Any], Any]
"""``handler(event, context) -> JSON-serialisable answer``, as the Python runtime calls it."""

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""Lambda's limit on a synchronous invocation's response payload."""

_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazonaws.awslambda/"


@dataclass
class LambdaContext:
    """The parts of the Python runtime's context object a handler reads."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    timeout: float = DEFAULT_TIMEOUT
    function_version: str = "$LATEST"
    memory_limit_in_mb: str = "256"
    log_group_name: str = ""
    log_stream_name: str = ""
    _end: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._end = time.monotonic() + self.timeout
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the function's timeout, never negative."""
        return max(0, int((self._end - time.monotonic()) * 1000))


@dataclass(frozen=True)
class _Function:
    name: str
    handler: LambdaHandler
    timeout: float


class LambdaServer(TLSServer):
    """Invoke API for the functions registered by name (``register``); thread-safe.

    ``counts`` is keyed by route: "invoke" (every Invoke call, known function or not) and
    "not_found" (any other operation or path).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        functions: Mapping[str, LambdaHandler] | None = None,
        *,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = REGION,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(ssl_context, host=host, port=port)
        self.account_id = account_id
        self.region = region
        self._functions: dict[str, _Function] = {}
        self._registry_lock = threading.Lock()
        for name, handler in (functions or {}).items():
            self.register(name, handler)

    # -- functions -------------------------------------------------------------------------

    def register(
        self, name: str, handler: LambdaHandler, *, timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """Serve ``handler`` as function ``name`` (replacing one of that name); return its ARN."""
        if not name or ":" in name or "/" in name:
            raise ValueError("a function name has no ':' or '/'")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        with self._registry_lock:
            self._functions[name] = _Function(name, handler, timeout)
        return self.function_arn(name)

    def unregister(self, name: str) -> None:
        """Stop serving function ``name`` (its invocations become ResourceNotFoundException)."""
        with self._registry_lock:
            self._functions.pop(name, None)

    def function_arn(self, name: str) -> str:
        """The ARN AWS would give function ``name`` in this account and region."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    @property
    def endpoint_url(self) -> str:
        """What ``AWS_ENDPOINT_URL_LAMBDA`` / ``endpoint_url`` should be."""
        return self.base_url

    def environment(self) -> dict[str, str]:
        """The variable that points boto3's Lambda client here (with the stack's CA bundle)."""
        return {"AWS_ENDPOINT_URL_LAMBDA": self.endpoint_url}

    def client(self, ca_bundle: Path) -> Any:
        """A boto3 Lambda client for this server, verifying TLS against ``ca_bundle``."""
        return boto3.session.Session().client(
            "lambda",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            verify=str(ca_bundle),
            aws_access_key_id=DUMMY_CREDENTIAL,
            aws_secret_access_key=DUMMY_CREDENTIAL,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    # -- routes ----------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> PathRoute:
        if request.method == "POST" and _INVOKE_PATH.fullmatch(request.path):
            return PathRoute("invoke", self._invoke)
        return PathRoute("not_found", self._unknown_operation)

    def _invoke(self, request: RecordedRequest) -> Response:
        match = _INVOKE_PATH.fullmatch(request.path)
        name = _function_name(unquote(match.group(1)) if match else "")
        with self._registry_lock:
            function = self._functions.get(name)
        if function is None:
            return _aws_error(
                404, "ResourceNotFoundException", f"Function not found: {self.function_arn(name)}"
            )
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind == "DryRun":
            return Response(204, {"x-amzn-RequestId": str(uuid.uuid4())})
        if kind != "RequestResponse":
            return _aws_error(
                400,
                "InvalidParameterValueException",
                f"the emulator runs RequestResponse and DryRun invocations, not {kind[:20]!r}",
            )
        try:
            event = json.loads(request.body or b"{}")
        except (UnicodeDecodeError, ValueError):
            return _aws_error(
                400, "InvalidRequestContentException", "Could not parse request body into json"
            )
        return self._run(function, event)

    def _run(self, function: _Function, event: Any) -> Response:
        """Call the handler as the Python runtime does and shape its outcome as Invoke does."""
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=self.function_arn(function.name),
            aws_request_id=request_id,
            timeout=function.timeout,
        )
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": request_id}
        try:
            result = function.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - the runtime reports any exception this way
            return _function_error(headers, type(exc).__name__, str(exc), request_id, exc)
        try:
            body = json.dumps(result).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return _function_error(
                headers, "Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id
            )
        if len(body) > MAX_RESPONSE_BYTES:
            return _function_error(
                headers,
                "Function.ResponseSizeTooLarge",
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload "
                f"size ({MAX_RESPONSE_BYTES} bytes).",
                request_id,
            )
        return Response(200, {"Content-Type": "application/json", **headers}, body)

    def _unknown_operation(self, request: RecordedRequest) -> Response:
        return _aws_error(404, "UnknownOperationException", "The emulator implements Invoke only")


def _function_name(reference: str) -> str:
    """The bare name from a name, a partial ARN or a full ARN, without ``:qualifier``."""
    if reference.startswith("arn:") or ":function:" in reference:
        reference = reference.split(":function:", 1)[-1]
    return reference.split(":", 1)[0]


def _function_error(
    headers: Mapping[str, str],
    error_type: str,
    message: str,
    request_id: str,
    exc: BaseException | None = None,
) -> Response:
    payload: dict[str, Any] = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__) if exc is not None else [],
    }
    return Response.json(200, payload, {**headers, "X-Amz-Function-Error": "Unhandled"})


def _aws_error(status: int, code: str, message: str) -> Response:
    """An error as Lambda's REST-JSON protocol sends it (botocore reads the type header)."""
    return Response.json(
        status,
        {"Type": "User", "message": message},
        {
            "x-amzn-ErrorType": code + _ERROR_TYPE_SUFFIX,
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )

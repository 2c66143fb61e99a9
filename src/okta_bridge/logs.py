"""Structured JSON logs and the one redaction point.

Every log line and every error body passes through ``REDACTOR``. It removes, wherever they appear:
values registered at run time, anything shaped like a JWT, a PEM block or an Authorization
credential, and the value of any field whose name says it is sensitive. Credentials (client
secret, password, private key) are *pinned*: they stay registered for the life of the environment,
since nothing shaped like them could be caught by a pattern. Issued tokens, which a long-lived
environment gets one of per hour (and which the JWT pattern catches anyway), rotate through a
bounded set. Lines carry the Lambda request id from a context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

REDACTED = "[REDACTED]"
LOGGER_NAME = "okta_bridge"

_SENSITIVE_KEY = re.compile(
    r"(authorization|secret|password|passwd|token|assertion|private_key|api_key|cookie)",
    re.IGNORECASE,
)
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|$)", re.DOTALL),
    re.compile(r"(?i)\b(bearer|basic|dpop|ssws)\s+[A-Za-z0-9._~+/=-]{8,}"),
)
# A JWT: three (JWS) to five (compact JWE) dotted base64url parts, any but the first possibly
# empty (``e30`` claims, JWE's ``dir`` key), the first holding "eyJ" (a JSON header), perhaps
# behind a prefix of the same alphabet ("token-eyJ..."). Matched from the start of a run only (the
# lookbehind), and no part gives characters back (possessive): a pattern that could start at
# every "eyJ" costs quadratic time on a run of them, and a token endpoint's error_description
# (64 KB) would then spend the invocation's deadline in the redactor.
_DOTTED = re.compile(
    r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{7,}+(?:\.[A-Za-z0-9_-]*+){2}+"
    r"(?:\.(?!eyJ)[A-Za-z0-9_-]*+){0,2}+"  # a JWE's last two parts; never the next JWT's header
)
_JWT_HEAD = re.compile(r"eyJ[A-Za-z0-9_-]{4}")
# Transient literals (tokens) are kept bounded: a long-lived environment sees a new one every hour.
_MAX_LITERALS = 64
# Pinned literals are credentials: a handful per rotation. The bound only stops a runaway caller.
_MAX_PINNED = 4096
_MIN_LITERAL = 6

# Lambda's log-level filter (JSON log format) knows TRACE DEBUG INFO WARN ERROR FATAL.
_LAMBDA_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "okta_bridge_request_id", default=None
)


class Redactor:
    """Removes secret material from strings and nested structures; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._literals: deque[str] = deque(maxlen=_MAX_LITERALS)
        self._pinned: dict[str, None] = {}  # insertion-ordered set
        # Longest first, so a value is scrubbed before any shorter value inside it; kept sorted
        # here, on the rare registration, rather than on every log line.
        self._longest_first: tuple[str, ...] = ()

    def register(self, values: Iterable[str]) -> None:
        """Remember transient values to scrub (tokens); the oldest are forgotten past a bound."""
        with self._lock:
            for part in _parts(values):
                if part not in self._literals and part not in self._pinned:
                    self._literals.append(part)
            self._sort()

    def pin(self, values: Iterable[str]) -> None:
        """Remember credential values to scrub for the life of the environment."""
        with self._lock:
            for part in _parts(values):
                self._pinned[part] = None
                while len(self._pinned) > _MAX_PINNED:
                    del self._pinned[next(iter(self._pinned))]
            self._sort()

    def _sort(self) -> None:
        literals = set(self._literals) | self._pinned.keys()
        self._longest_first = tuple(sorted(literals, key=len, reverse=True))

    def clear(self) -> None:
        """Forget every registered value (before a SnapStart snapshot, which must hold none).

        Only safe together with dropping the caches that hold those values: anything loaded
        later registers itself again on load (see ``okta_bridge.ops.snapstart``).
        """
        with self._lock:
            self._literals.clear()
            self._pinned.clear()
            self._longest_first = ()

    @property
    def registered(self) -> int:
        """How many values are registered (tests)."""
        return len(self._longest_first)

    def text(self, value: str) -> str:
        """Scrub one string: every registered value and every secret-shaped run (PEM, JWT,
        ``Authorization`` credential), all found in the original string and their spans merged,
        so that no replacement can split another match and leave its rest in clear."""
        spans: list[tuple[int, int]] = []
        for literal in self._longest_first:
            start = value.find(literal)
            while start != -1:
                spans.append((start, start + len(literal)))
                start = value.find(literal, start + 1)
        spans.extend(secret_spans(value))
        if not spans:
            return value
        spans.sort()
        out: list[str] = []
        position = 0
        end = -1
        for start, stop in spans:
            if start > end:
                if end >= 0:
                    out.append(REDACTED)
                out.append(value[position:start])
                end = stop
            else:
                end = max(end, stop)
            position = end
        out.append(REDACTED)
        out.append(value[position:])
        return "".join(out)

    def strings(self, value: Any, depth: int = 0) -> Any:
        """Scrub every string of a JSON-like structure, keys kept: for a report whose field names
        are its vocabulary (``secret_id``, ``token_type``) and whose values quote servers."""
        if depth > 20:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.strings(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.strings(v, depth + 1) for v in value]
        return value

    def value(self, value: Any, depth: int = 0) -> Any:
        """Scrub a JSON-like structure; sensitive keys lose their value whatever it is."""
        if depth > 20:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                str(k): REDACTED if _SENSITIVE_KEY.search(str(k)) else self.value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v, depth + 1) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(repr(value))


def secret_spans(value: str) -> Iterator[tuple[int, int]]:
    """Where ``value`` holds secret-shaped text (PEM, JWT, ``Authorization`` credential), in
    linear time."""
    for pattern in _PATTERNS:
        for found in pattern.finditer(value):
            if found.end() > found.start():
                yield found.span()
    position = 0
    while dotted := _DOTTED.search(value, position):
        first = value.find(".", dotted.start())
        head = _JWT_HEAD.search(value, dotted.start(), first)
        if head:
            yield head.start(), dotted.end()
            position = dotted.end()
        else:  # not a JWT's header: one may still start at the next part
            position = first + 1


def _parts(values: Iterable[str]) -> Iterator[str]:
    """Each value, and each long line of a multi-line value (a PEM body), stripped."""
    for value in values:
        for raw_part in (value, *value.splitlines()):
            part = raw_part.strip()
            if len(part) >= _MIN_LITERAL:
                yield part


REDACTOR = Redactor()

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _iso(record.created),
            "level": _LAMBDA_LEVELS.get(record.levelname, record.levelname),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        for key, val in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = val
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = type(record.exc_info[1]).__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(REDACTOR.value(entry), default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at emit time (Lambda's, or a test's capture)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: str = "INFO") -> logging.Logger:
    """Set up the package logger once; later calls only change the level."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


@contextlib.contextmanager
def request_scope(request_id: str) -> Iterator[None]:
    """Tag every log line inside the block with ``request_id``."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_request_id() -> str | None:
    """The request id of the invocation in progress, if any."""
    return _request_id.get()


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"

"""Fixtures for okta_bridge.delivery: moto's S3 over real TLS (the local stack's), an HttpClient
that trusts the stack's CA, credentials distinctive enough to scan logs for, and ``HashingS3``."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from okta_bridge.config import Settings
from okta_bridge.delivery.s3 import PART_SIZE, S3Delivery
from okta_bridge.logs import configure
from okta_bridge.transport.client import HttpClient, RetryPolicy
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse
from okta_bridge_dev.emulators.stack import LocalStack
from tests.conftest import stack_fixture

stack = stack_fixture()  # this directory's own local stack

ACCESS_KEY = "ASIADELIVERYTESTKEY1"
SECRET_KEY = "dElIvErY/secret+access/key0123456789abcdEF"
SESSION_TOKEN = "IQoJdelivery-session-token/FwoGZXIvYXdzEJr//////////wEaDMk1pTestOnly=="
CREDENTIALS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
NOW = 1_796_000_000.0  # 2026-11-30T01:33:20Z
SMALL_PART = 5 * 1024 * 1024  # S3's (and moto's) least part size but the last


@pytest.fixture(autouse=True)
def _clean_stack(stack: LocalStack) -> Iterator[None]:
    stack.reset_counts()
    stack.clear_faults()
    configure("DEBUG")
    yield
    stack.clear_faults()
    configure("INFO")


@pytest.fixture
def settings_for(stack: LocalStack) -> Callable[..., Settings]:
    """Settings pointing at the stack's S3 bucket, with extra variables on top."""

    def make(**extra: str) -> Settings:
        return Settings.from_env({**stack.environment("unused", delivery=True), **extra})

    return make


@pytest.fixture
def http(settings_for: Callable[..., Settings]) -> Iterator[HttpClient]:
    """The bridge's client trusting the stack's CA; backoff kept short (no sleeping tests)."""
    client = HttpClient(settings_for(), retry=RetryPolicy(max_retries=2, base=0.001, cap=0.005))
    yield client
    client.close()


@dataclass
class Deliveries:
    """Builds S3Delivery objects wired to the stack, with a fixed wall clock."""

    settings_for: Callable[..., Settings]
    http: HttpClient

    def make(self, *, part_size: int = PART_SIZE, **extra: str) -> S3Delivery:
        return S3Delivery(
            self.settings_for(**extra),
            self.http,
            credentials=lambda: CREDENTIALS,
            clock=lambda: NOW,
            part_size=part_size,
        )


@pytest.fixture
def deliveries(settings_for: Callable[..., Settings], http: HttpClient) -> Deliveries:
    return Deliveries(settings_for, http)


def deadline() -> Deadline:
    """A generous deadline: nothing here should come near it."""
    return Deadline(60.0)


def chunks(
    total: int, size: int = 65_536, seed: bytes = b"", *, framed: bool = True
) -> Iterator[bytes]:
    """``total`` bytes of varied JSON-ish text in ``size`` chunks, made as they are consumed,
    framed as an array (``[`` first, ``]`` last: a spill refuses anything else) unless not
    ``framed`` (``put`` takes any bytes, and the framing costs copies a memory test would count)."""
    produced = 0
    counter = 0
    while produced < total:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).hexdigest().encode()
        piece = (b'{"row": "' + block + b'"},\n') * (size // 76 + 1)
        piece = piece[: min(size, total - produced)]
        if framed and produced == 0:
            piece = b"[" + piece[1:]
        produced += len(piece)
        if framed and produced == total:
            piece = piece[:-1] + b"]"
        counter += 1
        yield piece


def digest_of(stream: Iterator[bytes]) -> tuple[int, str]:
    """Size and hex SHA-256 of everything ``stream`` yields."""
    sha = hashlib.sha256()
    size = 0
    for piece in stream:
        sha.update(piece)
        size += len(piece)
    return size, sha.hexdigest()


class HashingS3:
    """Answers S3's five requests like S3 does, hashing each part's bytes and keeping none."""

    def __init__(self) -> None:
        self.received = 0
        self.sha256 = hashlib.sha256()
        self.actions: list[str] = []
        self.headers: list[dict[str, str]] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        prepare: Callable[[], tuple[dict[str, str], bytes]],
        **_: Any,
    ) -> HttpResponse:
        headers, body = prepare()
        self.headers.append(headers)
        assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
        query = urllib.parse.urlsplit(url).query
        if method == "POST" and query == "uploads":
            self.actions.append("CreateMultipartUpload")
            answer = b"<InitiateMultipartUploadResult><UploadId>u-1</UploadId>"
            return HttpResponse(200, {}, answer + b"</InitiateMultipartUploadResult>", url, 1)
        if method == "PUT":
            self.actions.append("UploadPart" if "uploadId" in query else "PutObject")
            self.received += len(body)
            self.sha256.update(body)
            return HttpResponse(200, {"etag": f'"{len(self.actions)}"'}, b"", url, 1)
        if method == "POST":
            self.actions.append("CompleteMultipartUpload")
            return HttpResponse(200, {}, b"<CompleteMultipartUploadResult/>", url, 1)
        self.actions.append("AbortMultipartUpload")
        return HttpResponse(204, {}, b"", url, 1)

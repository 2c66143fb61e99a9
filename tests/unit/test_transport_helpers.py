from __future__ import annotations

import email.utils
import random

from okta_bridge.config import Settings
from okta_bridge.transport.client import RetryPolicy
from okta_bridge.transport.deadline import Deadline
from okta_bridge.transport.message import HttpResponse, retry_after_seconds

NOW = 1_800_000_000.0


def response(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(
        status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, b"", "u", 1
    )


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds(response(503, retry_after="7"), now=lambda: NOW) == 7.0


def test_retry_after_as_http_date() -> None:
    date = email.utils.formatdate(NOW + 12, usegmt=True)
    assert retry_after_seconds(response(429, retry_after=date), now=lambda: NOW) == 12.0


def test_okta_rate_limit_reset_on_429_only() -> None:
    reset = str(int(NOW) + 30)
    assert retry_after_seconds(response(429, x_rate_limit_reset=reset), now=lambda: NOW) == 30.0
    assert retry_after_seconds(response(503, x_rate_limit_reset=reset), now=lambda: NOW) is None


def test_garbage_retry_after_is_ignored() -> None:
    assert retry_after_seconds(response(503, retry_after="soon"), now=lambda: NOW) is None


def test_full_jitter_stays_within_the_exponential_envelope() -> None:
    policy = RetryPolicy(max_retries=5, base=0.1, cap=2.0, rng=random.Random(7))
    for retry in range(8):
        samples = [policy.backoff(retry) for _ in range(200)]
        envelope = min(2.0, 0.1 * 2**retry)
        assert all(0 <= s <= envelope for s in samples)
        assert max(samples) > envelope * 0.8  # full jitter spans the envelope


class FakeContext:
    def get_remaining_time_in_millis(self) -> int:
        return 4000


def test_deadline_from_lambda_context_keeps_the_margin() -> None:
    now = [100.0]
    deadline = Deadline.from_context(FakeContext(), Settings(secret_id="s", deadline_margin=0.5))
    assert 3.4 < deadline.remaining() <= 3.5
    fake = Deadline(2.0, clock=lambda: now[0])
    assert fake.cap(10) == 2.0
    now[0] += 5
    assert fake.remaining() == 0.0
    assert fake.cap(10) == 0.001


def test_deadline_without_context_uses_the_default() -> None:
    deadline = Deadline.from_context(None, Settings(secret_id="s", default_deadline=12))
    assert 11.9 < deadline.remaining() <= 12

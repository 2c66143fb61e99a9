"""Diagnose's token requests in one environment: at most one per minimum interval.

Repeated diagnose runs must not spend the org's token rate limit, so a run within
``BRIDGE_DIAGNOSE_MIN_INTERVAL_SECONDS`` of the last replays its answer, saying it is a replay.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from okta_bridge.auth.access_token import AccessToken
from okta_bridge.auth.dpop import Dpop
from okta_bridge.errors import BridgeError, InternalError
from okta_bridge.secret.credentials import Credentials


@dataclass(frozen=True)
class Mint:
    """What diagnose's last token request got, for whose credentials, and when."""

    at: float
    client: tuple[str, str]
    token: AccessToken | None
    facts: dict[str, Any]
    error: BridgeError | None

    def replay(self, facts: dict[str, Any], interval: float) -> AccessToken:
        """Report this earlier answer as the token hop's, saying it is one."""
        ago = time.monotonic() - self.at
        facts.update(self.facts)
        facts.update(
            from_earlier_diagnose_s=round(ago, 1),
            next_token_request_in_s=round(max(0.0, interval - ago), 1),
        )
        if self.token is None:
            raise self.error or InternalError()
        return self.token


class Mints:
    """Diagnose's token requests in this environment: at most one per minimum interval."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._last: Mint | None = None

    def recent(self, credentials: Credentials, interval: float, dpop: Dpop) -> Mint | None:
        """The last answer, if it is younger than ``interval``, for these credentials, and its
        token (if any) still usable with ``dpop``'s key. Call with ``lock`` held."""
        last = self._last
        now = time.monotonic()
        if last is None or now - last.at >= interval:
            return None
        if last.client != (credentials.client_id, credentials.token_url):
            return None
        if last.token is not None and (
            not last.token.usable(now) or last.token.bound_elsewhere(dpop)
        ):
            return None
        return last

    def remember(
        self,
        credentials: Credentials,
        token: AccessToken | None,
        facts: dict[str, Any],
        error: BridgeError | None,
    ) -> None:
        """Record a request's outcome. Call with ``lock`` held."""
        client = (credentials.client_id, credentials.token_url)
        self._last = Mint(time.monotonic(), client, token, dict(facts), error)

    def clear(self) -> None:
        """Forget the last answer and its token (SnapStart, tests)."""
        with self.lock:
            self._last = None


MINTS = Mints()

"""SharedTokenCache: one Okta token for the whole fleet of execution environments.

Lambda starts up to 1,000 environments every 10 s per function, and each used to ask Okta for its
own token: a burst, a deploy or a fan-out became hundreds of token requests against the org's one
rate-limit bucket. With ``BRIDGE_TOKEN_CACHE`` an environment without a fresh token reads the
fleet's from DynamoDB instead; only when there is none does it take a short lease (a conditional
write) and mint, while the others poll with backoff for what it publishes, or take the lease over
once it expires (its holder died). The fleet's refresh moment is drawn once by the minter; each
environment looks again at that moment plus jitter of its own, and the first to find it due
mints for everyone while all keep using the still-valid token.

The token (and, when it is DPoP-bound, the proof key made for it alone) is sealed by
``envelope``; the key of its item covers the secret's version, so a rotated credential never reads
a token minted with the old one. A 401 from the API removes the token for everyone, but only once
it is older than the minimum refresh age (``drop``), so a hostile API cannot make the fleet mint
more than the token budget allows.

The cache is an optimisation, never a dependency: any failure of DynamoDB or KMS (unreachable,
throttled, denied, an item that does not open) makes the environment mint for itself, counts a
``SharedCacheFallbacks`` and skips the table for ``CIRCUIT_SECONDS``. Warm invocations never get
here: they use the environment's own copy of the token.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

from okta_bridge import metrics
from okta_bridge.auth.access_token import EXPIRY_SAFETY, AccessToken, refresh_window
from okta_bridge.config import Settings
from okta_bridge.errors import CacheError, ConfigError
from okta_bridge.fleet.aws_json import THROTTLING, dynamodb_api, kms_api
from okta_bridge.fleet.envelope import Envelope
from okta_bridge.fleet.sealed import open_part, sealed_part
from okta_bridge.fleet.table import Item, TokenTable, cache_key, longest_lease
from okta_bridge.logs import get_logger
from okta_bridge.secret.credentials import Credentials
from okta_bridge.transport.client import HttpClient
from okta_bridge.transport.deadline import Deadline

FIRST_POLL = 0.1  # an Okta token request takes ~100-400 ms: look again after the fastest
POLL_CAP = 0.5  # and back off to this, so 1,000 waiting environments stay far below a
# partition's 3,000 strongly consistent reads per second
CIRCUIT_SECONDS = 30.0
RECHECK = (1.0, 3.0)  # a refresh another environment is doing: look for its token this soon
MIN_LIFE = 30.0  # a token with less life than this is not worth handing out from the table
MAX_ROUNDS = 32  # reads of one obtain: contention that never settles falls back
MAX_LOST = 3  # lease attempts lost in a row without anyone holding the lease: not contention
WAIT, LOST = "wait", "lost"

Mint = Callable[[], tuple[AccessToken, Credentials]]
"""Asks Okta for a token; returns it and the credentials it was minted with (re-read when Okta
refused the first ones)."""

log = get_logger("token_cache")


class SharedTokenCache:
    """The fleet's token for each credential; thread-safe, one per environment."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        *,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        table: TokenTable | None = None,
        envelope: Envelope | None = None,
    ) -> None:
        cache = settings.token_cache
        if cache is None:
            raise ConfigError("BRIDGE_TOKEN_CACHE", "is not set")
        self._settings = cache
        self._longest = longest_lease(cache.lease_seconds)
        self._dpop_mode = settings.dpop
        self._table = table or TokenTable(dynamodb_api(settings, http), cache.table)
        self._envelope = envelope or Envelope(kms_api(settings, http), cache.key_id, clock=clock)
        self._on_token = on_token
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._open_until = 0.0

    # -- what the token provider asks ----------------------------------------------------------

    def obtain(
        self, credentials: Credentials, held: AccessToken | None, mint: Mint, deadline: Deadline
    ) -> AccessToken:
        """The fleet's token for ``credentials`` (``held`` is the environment's current one, if
        any): read from the table, minted under the lease, or minted alone if the cache fails."""
        pk = cache_key(credentials, self._dpop_mode)
        if pk is None or self._circuit_open():
            if pk is not None:
                metrics.shared_cache("SharedCacheFallbacks")
            return mint()[0]
        started = self._clock()
        waited = [0.0]
        try:
            return self._obtain(pk, held, mint, deadline, waited)
        except CacheError as exc:
            self._trip(exc)
            return mint()[0]
        finally:
            if waited[0]:
                metrics.shared_cache("SharedCacheWaits")
                metrics.shared_cache(
                    "SharedCacheWaitMs", round((self._clock() - started) * 1000, 1)
                )

    def drop(self, token: AccessToken, min_age: float, deadline: Deadline) -> None:
        """The API refused ``token``: remove it from the table for everyone, if it is the fleet's
        and older than ``min_age`` there too. Never raises."""
        if token.shared is None or self._circuit_open():
            return
        pk, tid = token.shared
        try:
            if self._table.drop(pk, tid, issued_before=self._wall() - min_age, deadline=deadline):
                log.warning("the API refused the fleet's token; removed it from the shared cache")
        except CacheError as exc:
            self._trip(exc)

    def clear(self) -> None:
        """Forget the environment's identity, data keys and circuit (SnapStart restore)."""
        with self._lock:
            self._owner = None
            self._open_until = 0.0
        self._envelope.clear()
        self._rng.seed()

    # -- the protocol --------------------------------------------------------------------------

    def _obtain(
        self,
        pk: str,
        held: AccessToken | None,
        mint: Mint,
        deadline: Deadline,
        waited: list[float],
    ) -> AccessToken:
        # Reading, waiting and leasing may spend half of what is left, and never the time the
        # environment needs to mint for itself and call the API if the cache lets it down.
        share = min(2 * self._settings.lease_seconds + 1.0, max(0.0, deadline.remaining()) / 2)
        give_up = self._clock() + share
        budget = Deadline(max(0.001, share + 1.0))
        delay = FIRST_POLL
        throttled: CacheError | None = None
        outcome: AccessToken | str
        lost = 0  # lease attempts lost in a row: each means the item changed since it was read
        waiting = False  # another environment was seen minting
        for _ in range(MAX_ROUNDS):
            if self._clock() >= give_up:
                break
            if lost >= MAX_LOST:
                raise CacheError(
                    "TOKEN_CACHE_CORRUPT", "The item changed under every lease attempt."
                )
            try:
                item = self._table.get(pk, _within(budget, deadline))
            except CacheError as exc:
                # A hot item's partition throttles (or is slow to answer) when a thousand
                # environments poll it while one mints: that is waiting longer, not a failure
                # (each would otherwise mint for itself, the very burst the cache prevents).
                slow = exc.code == "TOKEN_CACHE_TIMEOUT" and waiting
                if exc.aws_code not in THROTTLING and not slow:
                    raise
                throttled, outcome = exc, WAIT
            else:
                throttled = None
                outcome = self._step(
                    pk, item, held, mint, deadline, budget=_within(budget, deadline)
                )
            if isinstance(outcome, AccessToken):
                return outcome
            if outcome is LOST:
                lost += 1
                continue  # another environment was first: read what it did
            lost, waiting = 0, True
            if not self._pause(delay, give_up, waited):
                break
            delay = min(delay * 2, POLL_CAP)
        if throttled is not None:
            raise throttled  # throttled all along: the circuit opens, this environment mints
        log.info("no token from the fleet in time; minting for this environment")
        metrics.shared_cache("SharedCacheFallbacks")
        return mint()[0]

    def _step(
        self,
        pk: str,
        item: Item | None,
        held: AccessToken | None,
        mint: Mint,
        deadline: Deadline,
        *,
        budget: Deadline,
    ) -> AccessToken | str:
        """What one read of the item leads to: a token (the fleet's, or minted under the lease),
        ``LOST`` (the lease went to another environment) or ``WAIT`` (another is minting)."""
        now = self._wall()
        current = None
        if item is not None and item.has_token and now < item.expires - MIN_LIFE:
            current = self._adopt(pk, item, held, now, budget)
        if current is not None and item is not None:
            if now < item.refresh or item.leased(now, self._longest):
                return current  # not due, or another environment is refreshing it
        elif item is not None and item.leased(now, self._longest):
            return WAIT
        if self._lease(pk, item, now, budget):
            return self._mint_for_fleet(pk, mint, deadline, current)
        return LOST

    def _pause(self, delay: float, give_up: float, waited: list[float]) -> bool:
        """Sleep about ``delay`` (jittered) unless that passes ``give_up``."""
        pause = delay * self._rng.uniform(0.8, 1.2)
        if self._clock() + pause > give_up:
            return False
        waited[0] += pause
        self._sleep(pause)
        return True

    def _lease(self, pk: str, item: Item | None, now: float, deadline: Deadline) -> bool:
        return self._table.take_lease(
            pk,
            self._identity(),
            now=now,
            seconds=self._settings.lease_seconds,
            seen=item,
            deadline=deadline,
        )

    def _mint_for_fleet(
        self, pk: str, mint: Mint, deadline: Deadline, current: AccessToken | None
    ) -> AccessToken:
        """Mint under the lease and publish; a failed mint gives the lease back (and, in a
        refresh, the current token keeps serving)."""
        try:
            token, used = mint()
        except Exception:
            self._release(pk, deadline)
            if current is not None:
                log.warning("the fleet's refresh failed; the current token keeps serving")
                return self._recheck(current)
            raise
        metrics.shared_cache("SharedCacheMints")
        if cache_key(used, self._dpop_mode) != pk:
            # Okta refused the credentials and the secret was re-read: this token belongs to
            # another version's item, which the next cold start will fill.
            self._release(pk, deadline)
            return token
        try:
            return self._publish(pk, token, Deadline(max(0.001, deadline.remaining() / 3)))
        except CacheError as exc:
            self._trip(exc)
            return token

    def _publish(self, pk: str, token: AccessToken, deadline: Deadline) -> AccessToken:
        now, wall = self._clock(), self._wall()
        expires = round(wall + (token.expires_at - now), 3)
        issued = round(expires - token.lifetime, 3)
        window = refresh_window(token.lifetime)
        refresh = round(expires - self._rng.uniform(window / 5, window), 3)
        tid = os.urandom(16).hex()
        plaintext = sealed_part(token)
        item = Item(tid=tid, issued=issued, refresh=refresh, expires=expires)
        edk, sealed = self._envelope.seal(plaintext, self._aad(pk, item), deadline)
        item = item._replace(edk=edk, sealed=sealed)
        if not self._table.publish(pk, self._identity(), item, deadline):
            log.info("the lease was taken over during the mint; the token serves this environment")
            return token
        return token.refreshing_at(self._local_refresh(item, now, wall), shared=(pk, tid))

    def _adopt(
        self, pk: str, item: Item, held: AccessToken | None, now: float, deadline: Deadline
    ) -> AccessToken | None:
        """The item's token with this environment's refresh moment; None when it does not open
        (altered, moved, sealed under another key): then it is replaced like a missing one."""
        mono = self._clock()
        if held is not None and held.shared == (pk, item.tid):
            return held.refreshing_at(self._local_refresh(item, mono, now))
        try:
            opened = self._envelope.open(item.edk, item.sealed, self._aad(pk, item), deadline)
            token = self._token(pk, item, opened, mono, now)
        except CacheError as exc:
            if exc.code != "TOKEN_CACHE_CORRUPT":
                raise
            log.warning(
                "a cached token did not open; replacing it",
                extra={"code": exc.code, "aws_error": exc.aws_code},
            )
            return None
        metrics.shared_cache("SharedCacheHits")
        return token

    def _token(self, pk: str, item: Item, opened: bytes, mono: float, wall: float) -> AccessToken:
        """The sealed part as a token, checked as strictly as Okta's answer is."""
        value, scheme, scopes, key = open_part(opened)
        lifetime = item.expires - item.issued
        if not 0 < lifetime <= 86_400:
            raise CacheError("TOKEN_CACHE_CORRUPT", "A cached token is malformed.")
        if self._on_token is not None:
            self._on_token(value)
        return AccessToken(
            value,
            mono + (item.expires - wall),
            self._local_refresh(item, mono, wall),
            lifetime,
            scopes,
            scheme,
            key.thumbprint if key is not None else None,
            key,
            (pk, item.tid or ""),
        )

    def _local_refresh(self, item: Item, mono: float, wall: float) -> float:
        """When this environment looks at the table again: the fleet's moment plus jitter of its
        own (a quarter of what is left then), so the fleet does not read at once."""
        spread = max(0.0, item.expires - EXPIRY_SAFETY - item.refresh) / 4
        return mono + (item.refresh + self._rng.uniform(0, spread) - wall)

    def _recheck(self, token: AccessToken) -> AccessToken:
        """``token`` again, until another look a second or three from now."""
        moment = self._clock() + self._rng.uniform(*RECHECK)
        return token.refreshing_at(min(moment, token.expires_at - EXPIRY_SAFETY))

    def _release(self, pk: str, deadline: Deadline) -> None:
        try:
            self._table.release(pk, self._identity(), deadline)
        except CacheError as exc:
            log.info("could not give the lease back", extra={"code": exc.code})

    def _aad(self, pk: str, item: Item) -> bytes:
        return item.aad(self._table.table, pk)

    def _identity(self) -> str:
        with self._lock:
            if self._owner is None:
                self._owner = os.urandom(12).hex()
            return self._owner

    def _circuit_open(self) -> bool:
        with self._lock:
            return self._clock() < self._open_until

    def _trip(self, exc: CacheError) -> None:
        metrics.shared_cache("SharedCacheFallbacks")
        log.warning(
            "the shared token cache failed; this environment mints for itself",
            extra={"code": exc.code, "aws_error": exc.aws_code, "skip_s": CIRCUIT_SECONDS},
        )
        with self._lock:
            self._open_until = self._clock() + CIRCUIT_SECONDS


def _within(budget: Deadline, deadline: Deadline) -> Deadline:
    """The earlier of the two."""
    return budget if budget.remaining() < deadline.remaining() else deadline

"""The access token the bridge holds: its value (never in a repr), scheme, scopes, DPoP binding and
the monotonic moments it should be refreshed and must no longer be used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from okta_bridge.records import Record

if TYPE_CHECKING:
    from okta_bridge.auth.dpop import Dpop, ProofKey

# Stop using a token this long before it expires: clocks drift and the API call takes time.
EXPIRY_SAFETY = 10.0


class AccessToken(Record):
    """A bearer token and the monotonic times at which it was issued, should be refreshed and
    must no longer be used. A ``__slots__`` class whose repr leaves the token out, not a named
    tuple (see ``okta_bridge.records``)."""

    _FIELDS = (
        "value",
        "expires_at",
        "refresh_at",
        "lifetime",
        "scopes",
        "scheme",
        "bound_to",
        "key",
        "shared",
    )
    _HIDDEN = frozenset({"value", "key"})
    __slots__ = _FIELDS

    value: Final[str]  # never in repr
    expires_at: Final[float]
    refresh_at: Final[float]
    lifetime: Final[float]
    scopes: Final[tuple[str, ...]]
    scheme: Final[str]  # "DPoP" for a token bound to the environment's DPoP key
    bound_to: Final[str | None]  # that key's thumbprint
    # The proof key of a token the fleet shares (the shared cache): it travels with the token,
    # which is bound to it and to no environment's own key. None: the environment's key.
    key: Final[ProofKey | None]
    shared: Final[tuple[str, str] | None]  # (cache key, token id) when it is the fleet's token

    def __init__(  # noqa: PLR0917 - positional, as the dataclass was
        self,
        value: str,
        expires_at: float,
        refresh_at: float,
        lifetime: float,
        scopes: tuple[str, ...] = (),
        scheme: str = "Bearer",
        bound_to: str | None = None,
        key: ProofKey | None = None,
        shared: tuple[str, str] | None = None,
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.refresh_at = refresh_at
        self.lifetime = lifetime
        self.scopes = scopes
        self.scheme = scheme
        self.bound_to = bound_to
        self.key = key
        self.shared = shared

    @property
    def issued_at(self) -> float:
        """When the request that got it started (monotonic)."""
        return self.expires_at - self.lifetime

    def usable(self, now: float) -> bool:
        """Still safe to send."""
        return now < self.expires_at - EXPIRY_SAFETY

    def bound_elsewhere(self, dpop: Dpop) -> bool:
        """Bound to a DPoP key the environment no longer holds (it made a new one): no proof
        this environment can make will go with it, so it is as good as expired."""
        return self.key is None and self.bound_to is not None and self.bound_to != dpop.thumbprint()

    def refreshing_at(self, moment: float, *, shared: tuple[str, str] | None = None) -> AccessToken:
        """This token with another refresh moment (the fleet's, or a later check) and, when
        ``shared`` is given, as that item of the fleet's (just published)."""
        return AccessToken(
            self.value,
            self.expires_at,
            moment,
            self.lifetime,
            self.scopes,
            self.scheme,
            self.bound_to,
            self.key,
            shared or self.shared,
        )


def refresh_window(lifetime: float) -> float:
    """How long before expiry a token may be refreshed: its last tenth, at most 5 minutes, and
    at least a fifth of that window before expiry (so a failed refresh can fall back)."""
    return min(300.0, max(lifetime * 0.1, min(30.0, lifetime / 4)))

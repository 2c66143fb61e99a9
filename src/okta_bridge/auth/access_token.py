"""The access token the bridge holds: its value (never in a repr), scheme, scopes, DPoP binding and
the monotonic moments it should be refreshed and must no longer be used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from okta_bridge.records import Record

if TYPE_CHECKING:
    from okta_bridge.auth.dpop import Dpop

# Stop using a token this long before it expires: clocks drift and the API call takes time.
EXPIRY_SAFETY = 10.0


class AccessToken(Record):
    """A bearer token and the monotonic times at which it was issued, should be refreshed and
    must no longer be used. A ``__slots__`` class whose repr leaves the token out, not a named
    tuple (see ``okta_bridge.records``)."""

    _FIELDS = ("value", "expires_at", "refresh_at", "lifetime", "scopes", "scheme", "bound_to")
    _HIDDEN = frozenset({"value"})
    __slots__ = _FIELDS

    value: Final[str]  # never in repr
    expires_at: Final[float]
    refresh_at: Final[float]
    lifetime: Final[float]
    scopes: Final[tuple[str, ...]]
    scheme: Final[str]  # "DPoP" for a token bound to the environment's DPoP key
    bound_to: Final[str | None]  # that key's thumbprint

    def __init__(  # noqa: PLR0917 - positional, as the dataclass was
        self,
        value: str,
        expires_at: float,
        refresh_at: float,
        lifetime: float,
        scopes: tuple[str, ...] = (),
        scheme: str = "Bearer",
        bound_to: str | None = None,
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.refresh_at = refresh_at
        self.lifetime = lifetime
        self.scopes = scopes
        self.scheme = scheme
        self.bound_to = bound_to

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
        return self.bound_to is not None and self.bound_to != dpop.thumbprint()

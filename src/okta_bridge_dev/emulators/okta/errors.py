"""The local Okta's error answers, in Okta's words.

Two shapes: the authorization servers answer OAuth's ``{"error", "error_description"}``
(``OAuthError``); the Management API, 404, 405 and 429 answer Okta's ``errorCode`` body
(``OktaApiError``, ``okta_error_body``). The builders below name the Okta errors the server raises
from more than one place.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from okta_bridge_dev.emulators.routing import Response

__all__ = [
    "OAuthError",
    "OktaApiError",
    "credentials_update_failed",
    "invalid_client",
    "method_not_allowed",
    "okta_error_body",
    "rate_limited",
    "resource_not_found",
    "unsupported_method",
    "validation_failed",
]

_AUTH_FAILED = (
    "Client authentication failed. Either the client or the client credentials are invalid."
)
_RATE_LIMITED = "API call exceeded rate limit due to too many requests."


class OAuthError(Exception):
    """An OAuth error answer: ``{"error", "error_description"}`` with its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class OktaApiError(Exception):
    """A Management API error answer: ``okta_error_body`` with its HTTP status.

    Also raised by the test helpers (``add_client_secret``, ``user_password``, ...), which apply
    the API's rules; ``code`` is Okta's errorCode and ``causes`` the errorCauses' summaries.
    """

    def __init__(
        self,
        status: int,
        code: str,
        summary: str,
        causes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {summary}" + "".join(f"; {cause}" for cause in causes))
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = tuple(causes)
        self.headers = dict(headers or {})

    def response(self, headers: Mapping[str, str]) -> Response:
        """The JSON answer, with ``headers`` (e.g. the rate limit's) under this error's own."""
        body = okta_error_body(self.code, self.summary, self.causes)
        return Response.json(self.status, body, {**headers, **self.headers})


def okta_error_body(code: str, summary: str, causes: Iterable[str] = ()) -> dict[str, Any]:
    """Okta's management-style error JSON (Management API errors, 404, 405 and 429)."""
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + secrets.token_urlsafe(16),
        "errorCauses": [{"errorSummary": cause} for cause in causes],
    }


def invalid_client(description: str = _AUTH_FAILED) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


def validation_failed(subject: str, cause: str) -> OktaApiError:
    return OktaApiError(400, "E0000001", f"Api validation failed: {subject}", [cause])


def resource_not_found(resource_id: str, resource_type: str) -> OktaApiError:
    summary = f"Not found: Resource not found: {resource_id} ({resource_type})"
    return OktaApiError(404, "E0000007", summary)


def credentials_update_failed(cause: str) -> OktaApiError:
    return OktaApiError(403, "E0000014", "Update of credentials failed", [cause])


def unsupported_method(allowed: str) -> OktaApiError:
    return OktaApiError(
        405,
        "E0000022",
        "The endpoint does not support the provided HTTP method",
        headers={"Allow": allowed},
    )


def method_not_allowed(allowed: str) -> Response:
    """The 405 answer of a route that only takes ``allowed``."""
    return unsupported_method(allowed).response({})


def rate_limited(headers: Mapping[str, str]) -> Response:
    """The 429 answer (E0000047), with the rate limit's ``headers``."""
    return Response.json(429, okta_error_body("E0000047", _RATE_LIMITED), headers)

"""The fault matrix, declared: one ``FaultCase`` per row of ``docs/reliability.md``.

A case names the hop it breaks, the fault in words, a ``setup`` that builds the harness and
injects the fault into the local stack, and what the bridge must do: the answer's status, its
error code and stage (``None`` when the bridge must recover and serve the API's JSON), the exact
number of retries on that hop, and optionally a ``check`` for anything else the row claims (its
``note``). ``bug`` marks a case the bridge fails today (the test is ``xfail(strict=True)``).
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.okta.server import OktaServer
from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import API_SCOPE, CLIENT_IDS
from tests.faults.conftest import (
    DEFAULT_REMAINING_MS,
    TOKEN_PATH,
    FaultHarness,
    FaultKit,
    Outcome,
)

Setup = Callable[[FaultKit], FaultHarness]
Check = Callable[[FaultKit, Outcome], None]

HTTP_API_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "GET /v1/{proxy+}",
    "rawPath": "/v1/data",
    "rawQueryString": "",
    "requestContext": {
        "http": {"method": "GET", "path": "/v1/data"},
        # IAM auth on the route: proxy callers without an AWS identity are refused.
        "authorizer": {"iam": {"userArn": "arn:aws:sts::123456789012:assumed-role/app/s"}},
    },
    "isBase64Encoded": False,
}


@dataclass(frozen=True)
class FaultCase:
    id: str
    hop: str  # "secrets", "okta" or "api"
    fault: str
    setup: Setup
    status: int
    code: str | None
    stage: str | None
    retries: int
    note: str = ""
    check: Check | None = None
    event: dict[str, Any] = field(default_factory=dict)
    remaining_ms: int = DEFAULT_REMAINING_MS
    calls: int | None = None  # requests the hop's stack server gets, if not one per attempt
    bug: str | None = None  # why the bridge fails this case today, with the file and line
    bug_effect: str = ""  # what should happen instead, in a few words, for the table

    @property
    def recovers(self) -> bool:
        return self.code is None


# -- setups --------------------------------------------------------------------------------


def sm_error(code: str, message: str = "injected", times: int = 1) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        kit.stack.secrets_manager.inject_error("GetSecretValue", code, message, times=times)
        return harness

    return setup


def secret_without(key: str) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        value = kit.stack.secret_value("basic")
        del value[key]
        return kit.harness(secret=value)

    return setup


def truncated_secret(kit: FaultKit) -> FaultHarness:
    text = json.dumps(kit.stack.secret_value("basic"))
    return kit.harness(secret=text[: len(text) - 20])  # cut inside: holds the client secret


def secrets_at_closed_port(kit: FaultKit) -> FaultHarness:
    return kit.harness(secrets_endpoint=f"https://127.0.0.1:{kit.closed_port()}")


def secrets_at_silent_port(kit: FaultKit) -> FaultHarness:
    return kit.harness(
        secrets_endpoint=f"https://127.0.0.1:{kit.silent_port()}", connect_timeout=0.75
    )


def okta_fault(**fault: Any) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        kit.stack.okta.inject(Fault(match=TOKEN_PATH, **fault))
        return harness

    return setup


def okta_rate_limit_reset(after: int, times: int) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        headers = {"X-Rate-Limit-Reset": str(int(kit.wall) + after), "X-Rate-Limit-Remaining": "0"}
        body = b'{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit"}'
        kit.stack.okta.inject(
            Fault(match=TOKEN_PATH, status=429, headers=headers, body=body, times=times)
        )
        return harness

    return setup


def okta_rate_limit_window(kit: FaultKit) -> FaultHarness:
    harness = kit.harness()
    okta = kit.stack.okta
    okta.reset_rate_limit()
    okta.rate_limit = 0  # the real server answers 429 with a reset a minute ahead
    kit.later(okta.reset_rate_limit)
    kit.later(lambda: setattr(okta, "rate_limit", None))
    return harness


def wrong_client_secret(kit: FaultKit) -> FaultHarness:
    value = kit.stack.secret_value("basic")
    value["client_secret"] = "not-the-client-secret-0000000000000000"
    return kit.harness(secret=value)


def rotated_client_secret(kit: FaultKit) -> FaultHarness:
    harness = kit.harness("post")
    assert harness.invoke({}).status == 200  # warm: secret and token cached
    kit.stack.rotate_client_secret("post", f"faults/{kit.case_id}")
    harness.bridge.tokens.clear()  # the token is due: the next call asks Okta with the old secret
    return harness


def unknown_scope(kit: FaultKit) -> FaultHarness:
    return kit.harness(scopes=("api.admin",))


def denied_client(kit: FaultKit) -> FaultHarness:
    harness = kit.harness()
    client_id = CLIENT_IDS["basic"]
    kit.stack.okta.deny_client(client_id)
    kit.later(lambda: kit.stack.okta.allow_client(client_id))
    return harness


def okta_token_answer(make_body: Callable[[str], dict[str, Any]]) -> Setup:
    """Answer the token request with ``make_body(a real token)``."""

    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        assert harness.invoke({}).status == 200
        token = kit.stack.okta.issued_tokens[-1]
        harness.bridge.tokens.clear()
        body = json.dumps(make_body(token)).encode()
        kit.stack.okta.inject(Fault(match=TOKEN_PATH, status=200, body=body))
        return harness

    return setup


def bad_okta(ca: str, name: str, **issue: Any) -> Setup:
    """A second Okta, the same client registered, behind a certificate that must be refused."""

    def setup(kit: FaultKit) -> FaultHarness:
        authority: LocalCA = kit.foreign_ca if ca == "foreign" else kit.stack.ca
        okta = OktaServer(server_context(authority.issue(name, **issue))).start()
        kit.later(okta.stop)
        value = kit.stack.secret_value("basic")
        okta.register_client(
            value["client_id"],
            auth_method="client_secret_basic",
            client_secret=value["client_secret"],
            scopes=(API_SCOPE,),
        )
        kit.servers["bad"] = okta
        return kit.harness(token_url=okta.token_url)

    return setup


def api_fault(**fault: Any) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        kit.stack.api.inject(Fault(**fault))
        return harness

    return setup


def api_retry_after_date(seconds: int) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness()
        when = email.utils.formatdate(kit.wall + seconds, usegmt=True)
        kit.stack.api.inject(Fault(status=429, headers={"Retry-After": when}, body=b"{}"))
        return harness

    return setup


def redirect_to_other_host(kit: FaultKit) -> FaultHarness:
    harness = kit.harness()
    other = kit.stack.start_extra_api()
    kit.servers["other"] = other
    location = {"Location": f"{other.base_url}/v1/data"}
    kit.stack.api.inject(Fault(status=302, headers=location, times=2))
    return harness


def dpop_app(*, dpop: str = "on", okta: dict[str, Any] | None = None, **api: Any) -> Setup:
    """The basic app requires DPoP (the stack's clear_faults switches it back); ``okta`` is a
    fault at the token endpoint, ``api`` attributes of the sample API (``dpop_support``,
    ``require_dpop_nonce``)."""

    def setup(kit: FaultKit) -> FaultHarness:
        kit.stack.okta.require_dpop(CLIENT_IDS["basic"], on=True)
        for name, value in api.items():
            setattr(kit.stack.api, name, value)
        harness = kit.harness(dpop=dpop)
        if okta is not None:
            kit.stack.okta.inject(Fault(match=TOKEN_PATH, **okta))
        return harness

    return setup


def api_fault_old_token(**fault: Any) -> Setup:
    """``api_fault`` for a bridge whose token counts as old enough to be refreshed on a 401."""

    def setup(kit: FaultKit) -> FaultHarness:
        harness = kit.harness(token_refresh_min_age=0.0)
        kit.stack.api.inject(Fault(**fault))
        return harness

    return setup


def api_401_on_a_one_token_budget(kit: FaultKit) -> FaultHarness:
    harness = kit.harness(token_refresh_min_age=0.0, token_budget_per_minute=1)
    kit.stack.api.inject(Fault(status=401, body=b'{"error":"invalid_token"}', times=10))
    return harness


def api_at_closed_port(kit: FaultKit) -> FaultHarness:
    return kit.harness(api_base_url=f"https://127.0.0.1:{kit.closed_port()}/v1/data")


def bad_api(ca: str, name: str, **issue: Any) -> Setup:
    def setup(kit: FaultKit) -> FaultHarness:
        authority: LocalCA = kit.foreign_ca if ca == "foreign" else kit.stack.ca
        api = SampleApi(
            server_context(authority.issue(name, **issue)),
            issuer=kit.stack.okta.issuer,
            jwks_url=kit.stack.okta.jwks_url,
            ca_bundle=kit.stack.ca.ca_pem_path,
        ).start()
        kit.later(api.stop)
        kit.servers["bad"] = api
        return kit.harness(api_base_url=f"{api.base_url}/v1/data")

    return setup


def pinned_to_another_key(kit: FaultKit) -> FaultHarness:
    return kit.harness(api_pins=frozenset({bytes(32)}))


# -- checks --------------------------------------------------------------------------------


def message_names(*words: str) -> Check:
    def check(kit: FaultKit, outcome: Outcome) -> None:
        assert outcome.error is not None
        for word in words:
            assert word in outcome.error["message"], outcome.error

    return check


def nothing_reached_the_bad_server(kit: FaultKit, outcome: Outcome) -> None:
    server = kit.servers["bad"]
    assert sum(server.counts.values()) == 0
    assert outcome.error is not None
    assert "BRIDGE_CA_BUNDLE" in outcome.error["message"] or outcome.error["code"] != (
        "TLS_UNTRUSTED"
    )


def nothing_at_the_other_host(kit: FaultKit, outcome: Outcome) -> None:
    assert kit.servers["other"].requests == []


def no_new_token(kit: FaultKit, outcome: Outcome) -> None:
    assert kit.stack.okta.counts["token"] == 1  # the cold call's only


def the_api_saw_nothing(kit: FaultKit, outcome: Outcome) -> None:
    assert sum(kit.stack.api.counts.values()) == 0


def one_new_token(kit: FaultKit, outcome: Outcome) -> None:
    assert kit.stack.okta.counts["token"] == 2  # the cold call's and the refresh


def retry_after_header(low: int, high: int) -> Check:
    def check(kit: FaultKit, outcome: Outcome) -> None:
        assert low <= int(outcome.headers.get("Retry-After", "0")) <= high, outcome.headers

    return check


def served_with_a_short_lived_token(kit: FaultKit, outcome: Outcome) -> None:
    token = kit.stack.okta.issued_tokens[-1]
    assert kit.stack.api.requests[-1].headers["authorization"] == f"Bearer {token}"


def stopped_at_the_first_secret(kit: FaultKit, outcome: Outcome) -> None:
    assert kit.stack.okta.counts["token"] == 1
    # The read, one re-read of AWSCURRENT, and one look for an AWSPENDING version (none here).
    assert kit.stack.secrets_manager.counts["GetSecretValue"] == 3


# -- the matrix ----------------------------------------------------------------------------

# fmt: off
CASES: list[FaultCase] = [
    # -- Secrets Manager ---------------------------------------------------------------------
    FaultCase(
        "sm-throttled-once", "secrets", "`ThrottlingException` once", sm_error(
            "ThrottlingException", times=1
        ),
        200, None, None, retries=1,
        note="Throttling (HTTP 400) is retried like a 503, with full jitter.",
    ),
    FaultCase(
        "sm-throttled", "secrets", "`ThrottlingException` on every call", sm_error(
            "ThrottlingException", times=10
        ),
        503, "SECRET_THROTTLED", "secret", retries=2,
    ),
    FaultCase(
        "sm-access-denied", "secrets", "`AccessDeniedException` (no IAM permission)",
        sm_error("AccessDeniedException", "User is not authorized to perform GetSecretValue"),
        500, "SECRET_ACCESS_DENIED", "secret", retries=0,
        note="Not retried: permissions do not heal in seconds.",
    ),
    FaultCase(
        "sm-not-found", "secrets", "`ResourceNotFoundException`",
        sm_error("ResourceNotFoundException", "Secrets Manager can't find the secret."),
        500, "SECRET_NOT_FOUND", "secret", retries=0,
        note="The message names the secret id.", check=message_names("faults/sm-not-found"),
    ),
    FaultCase(
        "sm-kms-decrypt", "secrets", "`DecryptionFailure` (KMS cannot decrypt)",
        sm_error("DecryptionFailure", "KMS key is disabled"),
        500, "SECRET_DECRYPT_FAILED", "secret", retries=0,
    ),
    FaultCase(
        "sm-kms-access-denied", "secrets", "`AccessDeniedException` from KMS (no kms:Decrypt)",
        sm_error("AccessDeniedException", "Access to KMS is not allowed"),
        500, "SECRET_DECRYPT_FAILED", "secret", retries=0,
        note="Told apart from an IAM denial by AWS's message.",
    ),
    FaultCase(
        "sm-malformed-json", "secrets", "secret string is not JSON (truncated)",
        truncated_secret,
        500, "SECRET_INVALID", "secret", retries=0,
        note="The content, which holds the client secret, is not shown.",
        check=message_names("not valid JSON"),
    ),
    FaultCase(
        "sm-missing-client-id", "secrets", "secret JSON without `client_id`",
        secret_without("client_id"),
        500, "SECRET_INVALID", "secret", retries=0,
        note="The message names the missing key.", check=message_names("client_id"),
    ),
    FaultCase(
        "sm-missing-token-url", "secrets", "secret JSON without `token_url`",
        secret_without("token_url"),
        500, "SECRET_INVALID", "secret", retries=0,
        note="The message names the missing key.", check=message_names("token_url"),
    ),
    FaultCase(
        "sm-unreachable", "secrets", "endpoint unreachable (connection refused)",
        secrets_at_closed_port,
        502, "SECRET_UNREACHABLE", "secret", retries=2, calls=0,
    ),
    FaultCase(
        "sm-silent", "secrets",
        "endpoint accepts TCP but never answers (0.75 s connect timeout, 1.5 s left)",
        secrets_at_silent_port,
        502, "SECRET_UNREACHABLE", "secret", retries=1, remaining_ms=1_500, calls=0,
    ),
    # -- Okta ----------------------------------------------------------------------------------
    FaultCase(
        "okta-invalid-client", "okta", "`invalid_client` (wrong client secret, no new one stored)",
        wrong_client_secret,
        502, "TOKEN_REJECTED", "token", retries=0,
        note="It had not changed and no AWSPENDING version existed, so Okta was not asked again.",
        check=stopped_at_the_first_secret,
    ),
    FaultCase(
        "okta-invalid-client-rotated", "okta",
        "`invalid_client` after the secret was rotated (new one stored)",
        rotated_client_secret,
        200, None, None, retries=1,
        note="The rotated secret worked.",
    ),
    FaultCase(
        "okta-invalid-scope", "okta", "`invalid_scope` (scope not granted to the client)",
        unknown_scope,
        502, "TOKEN_SCOPE_INVALID", "token", retries=0,
        note="Okta's description is passed on.", check=message_names("api.admin"),
    ),
    FaultCase(
        "okta-access-denied", "okta", "`access_denied` (no access policy rule admits the client)",
        denied_client,
        502, "TOKEN_ACCESS_DENIED", "token", retries=0,
    ),
    FaultCase(
        "okta-429-reset", "okta", "429 with `X-Rate-Limit-Reset` 2 s ahead, once",
        okta_rate_limit_reset(after=2, times=1),
        200, None, None, retries=1,
        note="Waited until the reset Okta announced.",
    ),
    FaultCase(
        "okta-429-persistent", "okta", "429 with `X-Rate-Limit-Reset` 2 s ahead, every time",
        okta_rate_limit_reset(after=2, times=10),
        503, "TOKEN_RATE_LIMITED", "token", retries=2,
    ),
    FaultCase(
        "okta-429-window", "okta",
        "org rate limit used up (429, reset 60 s ahead), API Gateway event",
        okta_rate_limit_window,
        503, "TOKEN_RATE_LIMITED", "token", retries=0, event=HTTP_API_EVENT,
        note="The reset is past the deadline: answered at once, with a `Retry-After` header.",
        check=retry_after_header(59, 61),
    ),
    FaultCase(
        "okta-dpop-nonce", "okta", "DPoP required: the first proof asked for Okta's nonce",
        dpop_app(),
        200, None, None, retries=0, calls=2,
        note="One more request carried the nonce (`use_dpop_nonce`), as every DPoP cold start.",
    ),
    FaultCase(
        "okta-dpop-required-off", "okta", "DPoP required, `BRIDGE_DPOP=off`",
        dpop_app(dpop="off"),
        502, "TOKEN_DPOP_REQUIRED", "token", retries=0,
        note="No proof, and none will be sent: the hint says how to turn DPoP on.",
    ),
    FaultCase(
        "okta-dpop-nonce-loop", "okta", "`use_dpop_nonce` again after the proof carried the nonce",
        dpop_app(
            okta={
                "status": 400,
                "headers": {"DPoP-Nonce": "nonce-that-never-works"},
                "body": b'{"error":"use_dpop_nonce","error_description":"nonce"}',
                "times": 5,
            }
        ),
        502, "TOKEN_DPOP_NONCE_LOOP", "token", retries=0, calls=2,
        note="Exactly one request with the nonce, never a loop.",
    ),
    FaultCase(
        "okta-dpop-proof-rejected", "okta", "the proof refused (`invalid_dpop_proof`)",
        dpop_app(
            okta={
                "status": 400,
                "body": b'{"error":"invalid_dpop_proof","error_description":"iat too old"}',
            }
        ),
        502, "TOKEN_DPOP_REJECTED", "token", retries=0,
        check=message_names("iat too old"),
    ),
    FaultCase(
        "okta-500", "okta", "500",
        okta_fault(status=500, body=b'{"errorCode":"E0000009","errorSummary":"Internal error"}'),
        502, "TOKEN_ENDPOINT_ERROR", "token", retries=0,
        note="500 is not retried.",
    ),
    FaultCase(
        "okta-503-once", "okta", "503 once",
        okta_fault(status=503, body=b"{}", times=1),
        200, None, None, retries=1,
    ),
    FaultCase(
        "okta-503", "okta", "503 every time",
        okta_fault(status=503, body=b"{}", times=10),
        502, "TOKEN_ENDPOINT_ERROR", "token", retries=2,
        check=message_names("3 attempts"),
    ),
    FaultCase(
        "okta-timeout", "okta", "no answer within the deadline (1.5 s left)",
        okta_fault(delay=3.0),
        504, "TOKEN_TIMEOUT", "network", retries=0, remaining_ms=1_500,
        note="Cut at the deadline (remaining time minus the 0.5 s margin); no time to retry.",
    ),
    FaultCase(
        "okta-reset-once", "okta", "connection reset once",
        okta_fault(reset=True, times=1),
        200, None, None, retries=1,
    ),
    FaultCase(
        "okta-reset", "okta", "connection reset every time",
        okta_fault(reset=True, times=10),
        502, "TOKEN_UNREACHABLE", "network", retries=2,
    ),
    FaultCase(
        "okta-tls-untrusted", "okta", "certificate from an untrusted CA",
        bad_okta("foreign", "okta-untrusted"),
        502, "TLS_UNTRUSTED", "tls", retries=0, calls=0,
        note="Nothing was sent; the message points at BRIDGE_CA_BUNDLE.",
        check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "okta-tls-expired", "okta", "expired certificate",
        bad_okta("stack", "okta-expired", expired=True),
        502, "TLS_CERT_EXPIRED", "tls", retries=0, calls=0,
        note="Nothing was sent.", check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "okta-tls-hostname", "okta", "certificate for another host name",
        bad_okta("stack", "okta-mismatch", dns_names=("other.example",), ip_addresses=()),
        502, "TLS_HOSTNAME_MISMATCH", "tls", retries=0, calls=0,
        note="Nothing was sent.", check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "okta-malformed-json", "okta", "200 with a body that is not JSON",
        okta_fault(status=200, body=b"<html>maintenance</html>"),
        502, "TOKEN_INVALID_RESPONSE", "token", retries=0,
    ),
    FaultCase(
        "okta-no-expires-in", "okta", "token answer without `expires_in`",
        okta_token_answer(lambda token: {"token_type": "Bearer", "access_token": token}),
        200, None, None, retries=0,
        note="The token is used, assumed to live 300 s.", check=served_with_a_short_lived_token,
    ),
    FaultCase(
        "okta-not-bearer", "okta", "`token_type` DPoP to a request without a proof",
        okta_token_answer(
            lambda token: {"token_type": "DPoP", "access_token": token, "expires_in": 3600}
        ),
        502, "TOKEN_INVALID_RESPONSE", "token", retries=0,
        note="The token is never sent, nor shown.", check=message_names("DPoP"),
    ),
    # -- API -----------------------------------------------------------------------------------
    FaultCase(
        "api-401-once", "api", "401 once (token revoked), token older than the minimum age",
        api_fault_old_token(status=401, body=b'{"error":"invalid_token"}', times=1),
        200, None, None, retries=1,
        note="The refused token was dropped.", check=one_new_token,
    ),
    FaultCase(
        "api-401", "api", "401 every time, token older than the minimum age",
        api_fault_old_token(status=401, body=b'{"error":"invalid_token"}', times=10),
        502, "UPSTREAM_UNAUTHORIZED", "upstream", retries=1,
        note="Never a third call.", check=one_new_token,
    ),
    FaultCase(
        "api-401-fresh-token", "api", "401 every time, to a token minted moments ago",
        api_fault(status=401, body=b'{"error":"invalid_token"}', times=10),
        502, "UPSTREAM_UNAUTHORIZED", "upstream", retries=0,
        note="No new token: a fresh one was just refused "
        "(`BRIDGE_TOKEN_REFRESH_MIN_AGE_SECONDS`).",
        check=no_new_token,
    ),
    FaultCase(
        "api-401-insufficient-scope", "api", "401 with `error=\"insufficient_scope\"`",
        api_fault_old_token(
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="x"'},
            body=b'{"error":"insufficient_scope"}',
            times=10,
        ),
        502, "UPSTREAM_UNAUTHORIZED", "upstream", retries=0,
        note="No new token: it would carry the same scopes.", check=no_new_token,
    ),
    FaultCase(
        "api-401-budget", "api", "401 every time, token budget of 1 a minute",
        api_401_on_a_one_token_budget,
        503, "TOKEN_BUDGET_EXHAUSTED", "token", retries=0,
        note="The refresh would pass `BRIDGE_TOKEN_BUDGET_PER_MINUTE`: refused, not sent.",
        check=no_new_token,
    ),
    FaultCase(
        "api-403", "api", "403", api_fault(status=403, body=b'{"error":"forbidden"}'),
        403, "UPSTREAM_FORBIDDEN", "upstream", retries=0,
    ),
    FaultCase(
        "api-404", "api", "404", api_fault(status=404, body=b'{"error":"not_found"}'),
        404, "UPSTREAM_NOT_FOUND", "upstream", retries=0,
    ),
    FaultCase(
        "api-429-seconds", "api", "429 with `Retry-After: 2`, once",
        api_fault(status=429, headers={"Retry-After": "2"}, body=b"{}", times=1),
        200, None, None, retries=1,
        note="Waited exactly the `Retry-After`.",
    ),
    FaultCase(
        "api-429-date", "api", "429 with `Retry-After` as an HTTP-date 3 s ahead, once",
        api_retry_after_date(3),
        200, None, None, retries=1,
        note="Waited until that date.",
    ),
    FaultCase(
        "api-429", "api", "429 with `Retry-After: 1`, every time",
        api_fault(status=429, headers={"Retry-After": "1"}, body=b"{}", times=10),
        503, "UPSTREAM_RATE_LIMITED", "upstream", retries=2,
    ),
    FaultCase(
        "api-429-past-deadline", "api",
        "429 with `Retry-After: 30` (5 s left), API Gateway event",
        api_fault(status=429, headers={"Retry-After": "30"}, body=b"{}", times=1),
        503, "UPSTREAM_RATE_LIMITED", "upstream", retries=0, remaining_ms=5_000,
        event=HTTP_API_EVENT,
        note="The wait would pass the deadline: answered at once, `Retry-After: 30` passed on.",
        check=retry_after_header(30, 30),
    ),
    FaultCase(
        "api-500", "api", "500", api_fault(status=500, body=b'{"error":"boom"}'),
        502, "UPSTREAM_ERROR", "upstream", retries=0,
        note="500 is not retried.",
    ),
    *[
        FaultCase(
            f"api-{status}-once", "api", f"{status} once",
            api_fault(status=status, body=b"{}", times=1),
            200, None, None, retries=1,
        )
        for status in (502, 503, 504)
    ],
    *[
        FaultCase(
            f"api-{status}", "api", f"{status} every time",
            api_fault(status=status, body=b"{}", times=10),
            502, "UPSTREAM_ERROR", "upstream", retries=2,
            check=message_names("3 attempt"),
        )
        for status in (502, 503, 504)
    ],
    FaultCase(
        "api-timeout", "api", "no answer within the deadline (1.5 s left)",
        api_fault(delay=3.0),
        504, "UPSTREAM_TIMEOUT", "network", retries=0, remaining_ms=1_500,
    ),
    FaultCase(
        "api-reset-once", "api", "connection reset before the answer, once",
        api_fault(reset=True, times=1),
        200, None, None, retries=1,
    ),
    FaultCase(
        "api-reset-mid-body-once", "api", "connection reset mid-body, once",
        api_fault(reset_mid_body=True, times=1),
        200, None, None, retries=1,
    ),
    FaultCase(
        "api-reset-mid-body", "api", "connection reset mid-body, every time",
        api_fault(reset_mid_body=True, times=10),
        502, "UPSTREAM_UNREACHABLE", "network", retries=2,
    ),
    FaultCase(
        "api-trickle", "api", "body trickles (1 byte / 0.2 s) past the deadline (1.5 s left)",
        api_fault(trickle_interval=0.2),
        504, "UPSTREAM_TIMEOUT", "network", retries=0, remaining_ms=1_500,
        note="The read is cut at the deadline.",
    ),
    FaultCase(
        "api-oversized", "api", "body over the 5 MB cap (`BRIDGE_MAX_RESPONSE_BYTES`)",
        api_fault(status=200, body=b"[" + b"0," * 2_500_000 + b"0]"),
        502, "UPSTREAM_TOO_LARGE", "upstream", retries=0,
        note="Refused from Content-Length, before reading the body.",
    ),
    FaultCase(
        "api-not-json", "api", "200 with HTML",
        api_fault(status=200, body=b"<html>login page</html>"),
        502, "UPSTREAM_NOT_JSON", "upstream", retries=0,
    ),
    FaultCase(
        "api-invalid-utf8", "api", "200 with invalid UTF-8 in JSON",
        api_fault(status=200, body=b'{"name": "caf\xe9"}'),
        502, "UPSTREAM_NOT_JSON", "upstream", retries=0,
        check=message_names("UTF-8"),
    ),
    FaultCase(
        "api-dpop-nonce", "api", "DPoP token: the API asks for its own nonce",
        dpop_app(require_dpop_nonce=True),
        200, None, None, retries=1,
        note="The second request carried the API's nonce; no new token.",
    ),
    FaultCase(
        "api-dpop-bearer-only", "api", "DPoP token: the API's gateway knows only Bearer",
        dpop_app(dpop_support="bearer_only"),
        502, "UPSTREAM_DPOP_UNSUPPORTED", "upstream", retries=0,
        note="Named, never retried as Bearer, no new token (it would be bound too).",
    ),
    FaultCase(
        "api-redirect-other-host", "api", "302 to another host",
        redirect_to_other_host,
        502, "UPSTREAM_REDIRECT", "upstream", retries=0,
        note="Not followed: nothing is sent to another origin.",
        check=nothing_at_the_other_host,
    ),
    FaultCase(
        "api-redirect-disallowed-path", "api", "302 to a same-origin path off the allow-list",
        api_fault(status=302, headers={"Location": "/admin/keys"}),
        502, "UPSTREAM_REDIRECT", "upstream", retries=0,
        note="Not followed: a redirect's path passes the same policy as the caller's.",
        check=message_names("outside the allow-list"),
    ),
    FaultCase(
        "api-json-too-deep", "api", "200 with JSON nested 100,000 deep",
        api_fault(status=200, body=b"[" * 100_000 + b"]" * 100_000),
        502, "UPSTREAM_NOT_JSON", "upstream", retries=0,
        note="Refused, never a stack overflow or `INTERNAL_ERROR`.",
    ),
    FaultCase(
        "api-redirect-http", "api", "302 to plain http",
        api_fault(status=302, headers={"Location": "http://127.0.0.1:9/v1/data"}),
        502, "UPSTREAM_REDIRECT", "upstream", retries=0,
        note="Not followed.",
    ),
    FaultCase(
        "api-redirect-loop", "api", "302 to itself, again and again",
        api_fault(status=302, headers={"Location": "/v1/data"}, times=10),
        502, "UPSTREAM_REDIRECT", "upstream", retries=0, calls=4,
        note="Gave up after 3 redirects.", check=message_names("more than 3 redirects"),
    ),
    FaultCase(
        "api-unreachable", "api", "connection refused",
        api_at_closed_port,
        502, "UPSTREAM_UNREACHABLE", "network", retries=2, calls=0,
    ),
    FaultCase(
        "api-tls-untrusted", "api", "certificate from an untrusted CA",
        bad_api("foreign", "api-untrusted"),
        502, "TLS_UNTRUSTED", "tls", retries=0, calls=0,
        note="Nothing was sent, the token least of all.", check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "api-tls-expired", "api", "expired certificate",
        bad_api("stack", "api-expired", expired=True),
        502, "TLS_CERT_EXPIRED", "tls", retries=0, calls=0,
        note="Nothing was sent.", check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "api-tls-hostname", "api", "certificate for another host name",
        bad_api("stack", "api-mismatch", dns_names=("other.example",), ip_addresses=()),
        502, "TLS_HOSTNAME_MISMATCH", "tls", retries=0, calls=0,
        note="Nothing was sent.", check=nothing_reached_the_bad_server,
    ),
    FaultCase(
        "api-tls-pin", "api", "key matches none of `BRIDGE_API_PINS`",
        pinned_to_another_key,
        502, "TLS_PIN_MISMATCH", "tls", retries=0, calls=0,
        note="Checked before any request byte is sent.",
        check=the_api_saw_nothing,
    ),
]
# fmt: on

"""Finding 1: path confusion. No caller reaches a path outside the allow-list, on any server stack.

``policy.py`` used to leave ``;`` unencoded and refuse only segments that were exactly ``.`` or
``..``, so ``/v1/items/..;/..;/admin/keys`` passed ``/v1/items/**`` and a servlet container served
``/admin/keys``. Three proofs here:

1. The corpus (``corpus.py``: more than 300 payloads from the parser-confusion literature, most of
   which reach ``/admin/keys`` or ``/internal/config`` on some modelled stack when sent verbatim)
   goes through the real handler, as direct and as HTTP API events, to the local API routing the
   way Tomcat and Spring do (strip ``;params``, decode, resolve dot segments): it serves nothing
   outside the allow-list, and every request it did receive resolves, under every modelled stack
   (servlet, nginx, Node, Go, ASP.NET/IIS), to an allowed path.
2. A Hypothesis property over the policy alone: whatever the path, what the policy accepts
   resolves under each stack's normalisation to a path the allow-list accepts.
3. The same property through the handler and real sockets: the request line the API receives is
   exactly the canonical path, and what it routed is allowed.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from okta_bridge.errors import RequestError
from okta_bridge.request.policy import PathPolicy
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import Harness
from tests.security.conftest import bridge_for, error_code
from tests.security.corpus import FAMILIES, PAYLOADS, reaches_target
from tests.security.normalizers import all_normalisations

PATTERNS = ("/v1/data", "/v1/items", "/v1/items/*", "/v1/items/**")
REFUSED = frozenset({"BAD_REQUEST", "PATH_NOT_ALLOWED"})
# Answers the sample API may give to an allowed path: no such item.
UPSTREAM_ANSWERS = frozenset({"UPSTREAM_NOT_FOUND", "UPSTREAM_CLIENT_ERROR"})
CALLER = "arn:aws:sts::123456789012:assumed-role/app/session"


def allowed(path: str) -> bool:
    """Whether a routed path (as a server resolved it) is one the allow-list names, read
    case-insensitively (ASP.NET and Express route so) and written independently of the policy."""
    segments = path.lower().split("/")[1:]
    if not segments or not all(segments):
        return False
    for pattern in PATTERNS:
        parts = pattern.split("/")[1:]
        if parts[-1] == "**":
            head = parts[:-1]
            if len(segments) > len(head) and all(
                p in ("*", s) for p, s in zip(head, segments, strict=False)
            ):
                return True
        elif len(parts) == len(segments) and all(
            p in ("*", s) for p, s in zip(parts, segments, strict=True)
        ):
            return True
    return False


def unsafe_readings(raw_path: str) -> dict[str, str | None]:
    """The stacks that would route ``raw_path`` somewhere the allow-list does not name (or
    refuse it outright, which for a path the bridge sent is a disagreement too)."""
    return {
        server: routed
        for server, routed in all_normalisations(raw_path).items()
        if routed is None or not allowed(routed.rstrip("/") if server == "node" else routed)
    }


def resolved(policy: PathPolicy, raw: str) -> tuple[str | None, str | None]:
    """``(canonical, None)`` or ``(None, code)``; any other exception propagates (a failure)."""
    try:
        return policy.resolve(raw), None
    except RequestError as error:
        return None, error.code


def proxy_event(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "requestContext": {
            "http": {"method": "GET", "path": path},
            "authorizer": {"iam": {"userArn": CALLER}},
        },
    }


@pytest.fixture(scope="module")
def servlet_bridge(stack: LocalStack, servlet_api: SampleApi) -> Harness:
    return bridge_for(stack, env={"BRIDGE_ALLOWED_PATHS": ",".join(PATTERNS)}, api=servlet_api)


def test_the_corpus_is_large_and_dangerous() -> None:
    assert len(PAYLOADS) >= 200
    dangerous = [p for p in PAYLOADS if reaches_target(p)]
    assert len(dangerous) >= 200


@pytest.mark.parametrize("shape", ["direct", "http_api"])
def test_the_corpus_reaches_nothing_outside_the_allow_list(
    servlet_bridge: Harness, servlet_api: SampleApi, shape: str
) -> None:
    servlet_api.reset_counts()
    servlet_api.clear_requests()
    outcomes: collections.Counter[str] = collections.Counter()
    for payload in PAYLOADS:
        event = {"path": payload} if shape == "direct" else proxy_event(payload)
        answer = servlet_bridge.invoke(event)
        code = error_code(answer)
        outcomes[code or "served"] += 1
        assert code is None or code in REFUSED | UPSTREAM_ANSWERS, (payload, answer)
    assert servlet_api.counts.get("admin", 0) == 0
    assert servlet_api.counts.get("internal", 0) == 0
    for request in servlet_api.requests:
        routed = servlet_api.routed_path(request)
        assert routed is not None, request.raw_target
        assert allowed(routed), request.raw_target
        assert unsafe_readings(request.raw_path) == {}, request.raw_target
    # Nearly every payload is refused before any I/O; the few that pass are plain item names.
    assert outcomes["served"] + outcomes["UPSTREAM_NOT_FOUND"] == len(servlet_api.requests)
    assert sum(outcomes[code] for code in REFUSED) >= len(PAYLOADS) - 40, outcomes


def test_every_family_of_the_corpus_is_refused_before_any_request() -> None:
    policy = PathPolicy(PATTERNS)
    accepted = {}
    for family, payloads in FAMILIES.items():
        for payload in payloads:
            canonical, code = resolved(policy, payload)
            if canonical is None:
                assert code in REFUSED
                continue
            accepted.setdefault(family, []).append((payload, canonical))
            assert unsafe_readings(canonical) == {}, (payload, canonical)
    # What passes is a plain path whose every reading is allowed: the 'plain' family's controls.
    assert set(accepted) <= {"plain", "case_and_encoded_letters"}, accepted


# -- properties ---------------------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        *("a", "7", "items", "admin", "keys", "x=1", "..", ".", "...", " ", "~", "-", "_"),
        *(";", "%3b", "%3B", "%2e", "%2E", "%252e", "%c0%ae", "%u002e", "\uff0e", "\u2024"),
        *("%2f", "%2F", "%5c", "\\", "\uff0f", "\u2215", "\uff3c", "%00", "%09", "%20", "%0a"),
        *("%", "%zz", "é", "%C3%A9", "\u0301", "\u200b", "+", "%2B", "@", ":", "|", "*"),
    ]
)
SEGMENTS = st.lists(st.lists(PIECES, min_size=1, max_size=4).map("".join), max_size=5)
PLAIN = st.text(
    st.one_of(
        st.sampled_from(list("abcXYZ019-._~!$&'()*+,=:@ ")),
        st.characters(categories=("L", "M", "N")),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def encoded(draw: st.DrawFn, text: str) -> str:
    """``text`` with some characters %-encoded as UTF-8, as a caller may write it."""
    out = []
    for char in text:
        if draw(st.booleans()):
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)


PATHS = st.one_of(
    st.sampled_from(PAYLOADS),
    st.lists(PLAIN.flatmap(encoded), min_size=1, max_size=4).map(
        lambda parts: "/v1/items/" + "/".join(parts)
    ),
    st.builds(lambda parts: "/v1/items/" + "/".join(parts), SEGMENTS),
    st.builds(lambda parts: "/v1/" + "/".join(parts), SEGMENTS),
    st.text(max_size=30).map(lambda text: "/v1/items/" + text),
)


@settings(max_examples=2500, derandomize=True, database=None)
@given(PATHS)
@example("/v1/items/..;/..;/admin/keys")
@example("/v1/items/%2e%2e;x=1/%2e%2e/admin/keys")
@example("/v1/items/a%2F..%2F..%2Fadmin%2Fkeys")
@example("/v1/items/\uff0e\uff0e/\uff0e\uff0e/admin/keys")
@example("/v1/items/.. /.. /admin/keys")
def test_whatever_the_policy_accepts_every_stack_reads_as_allowed(raw: str) -> None:
    canonical, code = resolved(PathPolicy(PATTERNS), raw)
    if canonical is None:
        assert code in REFUSED
        return
    assert unsafe_readings(canonical) == {}, (raw, canonical)


SOCKETS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SOCKETS
@given(PATHS)
def test_the_request_line_the_api_receives_is_the_canonical_allowed_path(
    servlet_bridge: Harness, servlet_api: SampleApi, raw: str
) -> None:
    before = len(servlet_api.requests)
    answer = servlet_bridge.invoke({"path": raw})
    received = servlet_api.requests[before:]
    code = error_code(answer)
    if code in REFUSED:
        assert received == []
        return
    assert code is None or code in UPSTREAM_ANSWERS, answer
    assert len(received) == 1
    [request] = received
    assert request.raw_path == PathPolicy(PATTERNS).resolve(raw)
    assert unsafe_readings(request.raw_path) == {}
    assert servlet_api.counts.get("admin", 0) == 0

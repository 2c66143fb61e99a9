"""Property-based hostile-input tests (Hypothesis) for paths and events (issue 4, item 2).

Properties: whatever a caller puts in a path or an event, the policy either refuses it with
``BAD_REQUEST`` / ``PATH_NOT_ALLOWED`` or returns a canonical path that an independent checker
(written here, sharing no code with ``okta_bridge.request.policy``) finds clean, allowed and
meaning what the caller wrote; the handler never raises, answers refused events with a
request-stage error before any I/O, and no request reaches another host or a path outside the
allow-list.

Every test is derandomized (CI runs the same examples every time) and keeps no example database.
Run with ``--hypothesis-show-statistics`` to see how many inputs each test tried and how they were
answered.
"""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from okta_bridge import handler
from okta_bridge.errors import CATALOG, RequestError
from okta_bridge.request.policy import MAX_PATH_LENGTH, PathPolicy, check_query, encode_query
from okta_bridge_dev.emulators.sample_api import SampleApi
from okta_bridge_dev.emulators.stack import LocalStack
from tests.hostile.conftest import ALLOWED_PATHS
from tests.integration.conftest import Harness, LambdaContext

REFUSED = frozenset(
    {
        "BAD_REQUEST",
        "PATH_NOT_ALLOWED",
        "METHOD_NOT_ALLOWED",
        "REQUEST_TOO_LARGE",
        "DELIVERY_NOT_CONFIGURED",
    }
)
DIRECT_KEYS = frozenset({"path", "query", "method", "body", "paginate", "max_pages", "deliver"})
# What an allowed request may still get from the sample API: no such item, or a bad page number.
UPSTREAM_ANSWERS = frozenset({"UPSTREAM_NOT_FOUND", "UPSTREAM_CLIENT_ERROR"})
POLICY_PATTERNS = (*ALLOWED_PATHS, "/v1/users/*/profile")
DOUBLE_STAR_PATTERNS = (*POLICY_PATTERNS, "/v1/reports/**")

PURE = settings(max_examples=1500, derandomize=True, database=None)
# The handler tests hit real sockets. Their harness (a function-scoped fixture) is built once per
# test and shared by its examples on purpose, as a warm Lambda environment is; no example changes
# the stack, and each compares the servers' records before and after its own invocation.
SOCKETS = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# -- an independent checker ---------------------------------------------------------------------

_HEX = frozenset("0123456789abcdefABCDEF")
_PCHAR = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-F]{2})*")


def percent_decode(text: str) -> str | None:
    """One round of RFC 3986 percent-decoding as UTF-8; None if an escape or the UTF-8 is bad."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            digits = text[index + 1 : index + 3]
            if len(digits) != 2 or not set(digits) <= _HEX:
                return None
            out.append(int(digits, 16))
            index += 3
            continue
        try:
            out += char.encode("utf-8")
        except UnicodeEncodeError:
            return None
        index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_control(char: str) -> bool:
    """C0 and C1 controls, DEL (Unicode category Cc)."""
    return unicodedata.category(char) == "Cc"


# What a decoded segment may hold (issue 11): ASCII letters, digits, unreserved characters and
# the sub-delimiters but ';' (servlet path parameters), and the space; beyond ASCII only letters,
# marks and digits, and only if their compatibility forms stay so.
_ASCII_OK = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@ "
)


def _plain_char(char: str) -> bool:
    if char.isascii():
        return char in _ASCII_OK
    return unicodedata.category(char)[0] in "LMN"


def clean_segment(segment: str) -> bool:
    """A decoded segment no server can read as traversal, a separator, a path parameter, an
    escape or a control, under NFKC folding, Windows' trailing dot and space stripping, or with
    its combining marks dropped."""
    if segment == "" or not all(_plain_char(c) for c in segment):
        return False
    folded = unicodedata.normalize("NFKC", segment)
    if not all(_plain_char(c) for c in folded):
        return False
    bare = "".join(
        c for c in unicodedata.normalize("NFKD", segment) if unicodedata.category(c)[0] != "M"
    )
    meaningful = unicodedata.normalize("NFKC", bare).replace(".", "").replace(" ", "")
    return meaningful != ""


def pattern_allows(patterns: Sequence[str], segments: Sequence[str]) -> bool:
    """README's semantics: literal segments, ``*`` one segment, a final ``**`` one or more."""
    if not all(segments):
        return False  # a wildcard never stands for an empty segment, and literals are not empty
    for pattern in patterns:
        parts = pattern.split("/")[1:]
        if parts[-1] == "**":
            fixed = parts[:-1]
            if len(segments) < len(parts):
                continue
        else:
            fixed = parts
            if len(segments) != len(fixed):
                continue
        if all(part in ("*", segment) for part, segment in zip(fixed, segments, strict=False)):
            return True
    return False


def decoded_segments(path: str) -> list[str] | None:
    """The segments of an absolute path, each decoded once; None if any cannot be decoded."""
    if not path.startswith("/"):
        return None
    decoded = [percent_decode(s) for s in path[1:].split("/")]
    return None if None in decoded else [d for d in decoded if d is not None]


def independently_allowed(patterns: Sequence[str], raw: object) -> bool:
    """Whether ``raw`` plainly names an allowed path: the only paths the bridge may accept."""
    if not isinstance(raw, str) or len(raw) > MAX_PATH_LENGTH:
        return False
    if not raw.startswith("/") or raw.startswith("//"):
        return False
    if any(c in raw for c in "\\?#") or any(is_control(c) for c in raw):
        return False
    segments = decoded_segments(raw)
    return (
        segments is not None
        and all(clean_segment(s) for s in segments)
        and pattern_allows(patterns, segments)
    )


def assert_canonical_and_allowed(patterns: Sequence[str], raw: str, canonical: str) -> None:
    """Properties (a), (b), (c) of an accepted path, and that it kept ``raw``'s meaning."""
    assert canonical.startswith("/"), canonical
    assert not canonical.startswith("//"), canonical
    assert all(_PCHAR.fullmatch(s) for s in canonical[1:].split("/")), canonical
    segments = decoded_segments(canonical)
    assert segments is not None, canonical
    assert all(clean_segment(s) for s in segments), segments
    assert pattern_allows(patterns, segments), segments
    assert decoded_segments(raw) == segments, (raw, canonical)  # not repaired into another path


def outcome(resolve: Callable[[], str]) -> tuple[str | None, str | None]:
    """``(canonical, None)`` or ``(None, code)``; any other exception propagates (a failure)."""
    try:
        return resolve(), None
    except RequestError as error:
        return None, error.code


# -- building blocks ----------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices`` with these weights (``st.one_of`` merges repeated branches)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda index: pool[index])


def pct(char: str, *, lower: bool = False) -> str:
    """Every UTF-8 byte of ``char`` as a %XX escape (even for unreserved characters)."""
    form = "%{:02x}" if lower else "%{:02X}"
    return "".join(form.format(byte) for byte in char.encode("utf-8"))


UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
SUB_DELIMS = frozenset("!$&'()*+,=:@")  # ';' never: servlet containers strip what follows it
SENT_AS_IS = (UNRESERVED | SUB_DELIMS) - {"+"}  # '+' is a space to form decoders: always %2B

SAFE_SEGMENT = st.text(
    weighted(
        (2, st.sampled_from(sorted(UNRESERVED | SUB_DELIMS))),
        (1, st.characters(categories=("L", "M", "N"))),
    ),
    min_size=1,
    max_size=16,
).filter(clean_segment)


@st.composite
def written(draw: st.DrawFn, segment: str) -> str:
    """``segment`` as a caller might write it: each character plain or %-encoded in either case."""
    return "".join(
        char if draw(st.booleans()) else pct(char, lower=draw(st.booleans())) for char in segment
    )


@st.composite
def allowed_paths(draw: st.DrawFn, patterns: Sequence[str]) -> tuple[list[str], str]:
    """(decoded segments, raw path as written) for a path one of ``patterns`` allows."""
    pattern = draw(st.sampled_from(patterns)).split("/")[1:]
    segments = [draw(SAFE_SEGMENT) if part == "*" else part for part in pattern]
    return segments, "/" + "/".join(draw(written(s)) for s in segments)


# -- hostile paths ------------------------------------------------------------------------------

DOT = st.sampled_from(
    [
        *(".", "%2e", "%2E", "%252e", "%252E", "%25252e", "%25%32%65", "%%32%65"),
        *("\uff0e", "%EF%BC%8E", "%ef%bc%8e", "\u2024", "%E2%80%A4", "\ufe52"),
        *("%c0%ae", "%C0%AE", "%e0%80%ae", "%f0%80%80%ae", "%u002e", "%U002E"),
    ]
)
DOTS = st.lists(DOT, min_size=1, max_size=3).map("".join)
SEPARATOR = st.sampled_from(
    [
        *["/"] * 12,
        *("%2f", "%2F", "%252f", "\\", "%5c", "%5C", "%255c", "\uff0f", "%EF%BC%8F", "\uff3c"),
        *("%c0%af", "%c1%9c", "%u002f", "%u005c", "//", "/./", "\\\\"),
    ]
)
PREFIX = st.sampled_from(
    [
        *("", "/", "/v1", "/v1/items", "/v1/items/", "/v1/data", "/v1/users"),
        *("//", "///", "//evil.example", "//evil.example/v1/data", "///evil.example/v1/data"),
        *("//user:pass@evil.example", "http://", "http://evil.example", "https://evil.example"),
        *("https://evil.example/v1/data", "HTTPS://evil.example:443", "https:evil.example"),
        *("http:", "file:///etc/passwd", "javascript:", "evil.example/v1/data", "v1/data"),
        *("\\\\evil.example", "\\\\\\\\evil.example", "\\/evil.example", "/\\evil.example"),
        *("/\\\\evil.example", "/@evil.example", "@evil.example", "@evil"),
        *("/v1/items@evil.example", "/%2f%2fevil.example", "/%2F/evil.example"),
        *("/%5c%5cevil.example", "/\uff0f\uff0fevil.example", " /", "\t/", "\r\n/", "/%00/"),
        "/%09/evil.example",
    ]
)
C0_C1 = st.one_of(
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),
    st.just("\x7f"),
    st.characters(min_codepoint=0x80, max_codepoint=0x9F),
)
CONTROL = st.one_of(
    C0_C1,
    C0_C1.map(pct),
    C0_C1.map(lambda c: pct(c, lower=True)),
    st.sampled_from(
        [
            *("\r\n", "%0d%0a", "%0D%0A", "\r\nHost: evil.example", "%0d%0aHost:%20evil.example"),
            *("\x00", "%00", "%2500", "%250d%250a", "%c0%80", "\u2028", "%E2%80%A8"),
        ]
    ),
)
SAFE_TEXT = st.text(
    st.one_of(
        st.characters(categories=("Lu", "Ll", "Nd")), st.sampled_from(list("-._~!$&'()*+,;=:@ "))
    ),
    min_size=1,
    max_size=10,
)
LITERAL = st.sampled_from(
    [
        *("v1", "data", "items", "users", "profile", "reports", "7", "V1", "v2"),
        *("%76%31", "item%73", "\uff56\uff11", "data ", "items;x=1"),
    ]
)
BAD_ESCAPE = st.sampled_from(["%", "%2", "%g0", "%%", "%zz", "%-1", "%+1", "% 2e", "%2e%"])
QUERY_OR_FRAGMENT = st.sampled_from(["?", "#", "?a=b", "#frag", "%3f", "%23", "%3F%2e%2e"])
SEGMENT = st.one_of(
    LITERAL,
    SAFE_TEXT,
    DOTS,
    st.tuples(SAFE_TEXT, CONTROL, SAFE_TEXT).map("".join),
    st.tuples(DOTS, SAFE_TEXT).map("".join),
    st.text(max_size=8),
    BAD_ESCAPE,
    QUERY_OR_FRAGMENT,
    st.just(""),
)
SUFFIX = st.sampled_from(["", "", "", "/", "//", "/.", "/..", "%2f", "\\", "?x=1", "#", "%"])


@st.composite
def hostile_paths(draw: st.DrawFn) -> str:
    """A prefix, then separator/segment pairs, then a suffix; sometimes padded to the limit."""
    parts = [draw(PREFIX)]
    for _ in range(draw(st.integers(0, 6))):
        parts += [draw(SEPARATOR), draw(SEGMENT)]
    parts.append(draw(SUFFIX))
    path = "".join(parts)
    padding = draw(st.sampled_from([0] * 9 + [MAX_PATH_LENGTH - len(path), MAX_PATH_LENGTH]))
    if padding > 0:
        path += "/" + "a" * (padding - 1) if draw(st.booleans()) else "/" + "%2e" * padding
    return path


NEAR_ALLOWED = st.one_of(
    st.builds("/v1/items/{}".format, SEGMENT),
    st.builds("/v1/items/{}{}{}".format, SEGMENT, SEPARATOR, SEGMENT),
    st.builds("/v1/users/{}/profile".format, SEGMENT),
    st.builds("/v1/{}/{}".format, SEGMENT, SEGMENT),
    allowed_paths(POLICY_PATTERNS).map(lambda case: case[1]),
)
LONG_ITEM_PATH = st.builds(
    lambda unit, length: "/v1/items/" + unit * length,
    st.sampled_from(["a", "%41", "\u00e9", "%C3%A9", "."]),
    st.integers(MAX_PATH_LENGTH - 30, MAX_PATH_LENGTH + 10),
)
HOSTILE_PATH = weighted(
    (4, hostile_paths()),
    (3, NEAR_ALLOWED),
    (1, LONG_ITEM_PATH),
    (1, st.text(max_size=40)),
    (1, st.text(st.sampled_from(list("/\\.%2eEfF5cC@:0a\r\n\x00")), max_size=30)),
)


# -- the policy alone ---------------------------------------------------------------------------


@PURE
@given(HOSTILE_PATH)
@example("/v1/items/%2e%2e")
@example("/v1/items/%c0%ae%c0%ae")
@example("/v1/items/\uff0e\uff0e")
@example("/v1/items/%u002e%u002e")
@example("//evil.example/v1/data")
@example("/@evil.example/v1/data")
@example("/v1/items/a%0d%0aHost:%20evil.example")
def test_resolve_refuses_or_returns_a_clean_allowed_path(raw: str) -> None:
    policy = PathPolicy(POLICY_PATTERNS)
    canonical, code = outcome(lambda: policy.resolve(raw))
    tally(f"resolve: {code or 'allowed'}")
    if canonical is None:
        assert code in {"BAD_REQUEST", "PATH_NOT_ALLOWED"}
        return
    assert independently_allowed(POLICY_PATTERNS, raw), raw
    assert_canonical_and_allowed(POLICY_PATTERNS, raw, canonical)
    if len(canonical) <= MAX_PATH_LENGTH:  # the limit is on what callers send, not on escapes
        assert policy.resolve(canonical) == canonical  # canonical is a fixed point


@settings(PURE, max_examples=1000)
@given(allowed_paths(POLICY_PATTERNS))
@example((["v1", "items", "a b"], "/v1/items/a%20b"))
@example((["v1", "items", "caf\u00e9"], "/v1/items/caf%c3%a9"))
@example((["v1", "users", "a...b", "profile"], "/v1/users/a...b/profile"))
def test_allowed_paths_round_trip(case: tuple[list[str], str]) -> None:
    segments, raw = case
    canonical = PathPolicy(POLICY_PATTERNS).resolve(raw)
    assert decoded_segments(canonical) == segments
    assert all(_PCHAR.fullmatch(s) for s in canonical[1:].split("/")), canonical
    if all(c in SENT_AS_IS for s in segments for c in s):
        assert canonical == "/" + "/".join(segments)  # nothing to escape: unchanged


@settings(PURE, max_examples=500)
@given(weighted((3, HOSTILE_PATH), (1, st.builds("/v1/reports{}".format, SUFFIX))))
@example("/v1/reports/")
def test_double_star_needs_at_least_one_real_segment(raw: str) -> None:
    policy = PathPolicy(DOUBLE_STAR_PATTERNS)
    canonical, code = outcome(lambda: policy.resolve(raw))
    if canonical is None:
        assert code in {"BAD_REQUEST", "PATH_NOT_ALLOWED"}
        return
    assert_canonical_and_allowed(DOUBLE_STAR_PATTERNS, raw, canonical)


SURROGATE = st.characters(categories=("Cs",))  # a JSON event can carry "\ud800"


@settings(PURE, max_examples=200)
@given(SAFE_TEXT, SURROGATE, SAFE_TEXT, st.sampled_from(["path", "query key", "query value"]))
@example("a", "\ud800", "b", "path")
def test_lone_surrogates_are_bad_requests(
    before: str, surrogate: str, after: str, where: str
) -> None:
    text = before + surrogate + after
    if where == "path":
        canonical, code = outcome(lambda: PathPolicy(POLICY_PATTERNS).resolve(f"/v1/items/{text}"))
    else:
        pair = (text, "1") if where == "query key" else ("q", text)
        canonical, code = outcome(lambda: encode_query(check_query((pair,))))
    assert canonical is None
    assert code in {"BAD_REQUEST", "PATH_NOT_ALLOWED"}


# -- events -------------------------------------------------------------------------------------


def nest(depth: int, shape: str, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        kind = shape if shape != "mixed" else ("dict", "list")[level % 2]
        value = {"path": value} if kind == "dict" else [value]
    return value


JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
JSON_ANY = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
DEEP = st.builds(
    nest,
    st.integers(50, 400),
    st.sampled_from(["dict", "list", "mixed"]),
    st.one_of(st.just("/v1/data"), HOSTILE_PATH, JSON_SCALAR),
)
HUGE = st.builds(
    lambda unit, size: (unit * size)[:size],
    st.sampled_from(["a", "/v1/items", "/%2e%2e", "../", "\r\n", "\x00", "\u00e9", "%", "\\"]),
    st.integers(100_000, 110_000),
)
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(JSON_SCALAR, max_size=4),
    st.dictionaries(st.text(max_size=8), JSON_ANY, max_size=4),
    DEEP,
)
GOOD_PATH = st.one_of(
    st.sampled_from(["/v1/data", "/v1/items", "/v1/items/7", "/v1/items/%37", "/v1/items/a%20b"]),
    allowed_paths(ALLOWED_PATHS).map(lambda case: case[1]),
)
PAGE = st.one_of(st.integers(0, 12), st.integers(0, 12).map(str), st.text(max_size=4))
GOOD_QUERY = st.fixed_dictionaries({}, optional={"page": PAGE, "page_size": PAGE, "tag": PAGE})
QUERY_VALUE = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**63), 2**64),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), JSON_SCALAR, max_size=2),
    CONTROL,
    HUGE,
)
QUERY = weighted(
    (3, GOOD_QUERY),
    (3, st.dictionaries(st.one_of(st.text(max_size=10), CONTROL), QUERY_VALUE, max_size=6)),
    (1, st.dictionaries(st.text(max_size=3), st.just("1"), min_size=51, max_size=60)),
    (1, WRONG),
    (1, HUGE),
)
RAW_QUERY = weighted(
    (3, GOOD_QUERY.map(urllib.parse.urlencode)),
    (
        2,
        st.sampled_from(
            [
                *("", "page=x", "a=%0d%0a", "a=\r\nX-Injected: 1", "a=%00", "%ff=1", "a=%c0%ae"),
                *("a=%zz", "=1", "&&&", "a=1&" * 60, "next=//evil.example&u=https://evil.example"),
            ]
        ),
    ),
    (2, st.text(max_size=40)),
    (1, HUGE),
    (1, WRONG),
)
METHOD = weighted(
    (5, st.just("GET")),
    (
        2,
        st.sampled_from(
            [
                *("POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"),
                *("get", "Get", "GET ", " GET", "GET\r\n", "G\x00ET", ""),
            ]
        ),
    ),
    (1, WRONG),
)


def toward(extra_authority: str) -> st.SearchStrategy[str]:
    """Hostile paths naming the second API's real address."""
    return st.sampled_from(
        [
            f"//{extra_authority}/v1/data",
            f"https://{extra_authority}/v1/data",
            f"/@{extra_authority}/v1/data",
            f"\\\\{extra_authority}/v1/data",
            f"/%2f%2f{extra_authority}/v1/data",
            f"/v1/items/..%2f..%2f..%2f{extra_authority}",
            f"/v1/items/@{extra_authority}",
            f"/v1/items/{extra_authority}",
        ]
    )


def path_values(extra_authority: str) -> st.SearchStrategy[object]:
    return weighted(
        (5, HOSTILE_PATH),
        (1, toward(extra_authority)),
        (3, GOOD_PATH),
        (1, HUGE.map(lambda text: "/v1/items/" + text)),
        (1, HUGE),
        (2, WRONG),
    )


def direct_events(path: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    query = weighted((1, st.none()), (2, QUERY))
    plain = st.fixed_dictionaries({}, optional={"path": path, "query": query})
    with_extra = st.builds(
        lambda base, key, value: {**base, key: value},
        plain,
        st.sampled_from(["url", "host", "httpMethod", "headers", "Path", ""]) | st.text(max_size=6),
        JSON_ANY,
    )
    return weighted((4, plain), (1, with_extra))


def v1_events(path: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    multi = st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=8), st.lists(QUERY_VALUE, max_size=3), max_size=4),
        GOOD_QUERY.map(lambda query: {key: [value] for key, value in query.items()}),
        WRONG,
    )
    context = st.fixed_dictionaries(
        {"stage": st.sampled_from(["prod", "$default"])},
        optional={"requestId": st.uuids().map(str), "domainName": st.text(max_size=20)},
    )
    return st.fixed_dictionaries(
        {"httpMethod": METHOD, "requestContext": weighted((4, context), (1, WRONG))},
        optional={
            "path": path,
            "resource": st.just("/{proxy+}"),
            "multiValueQueryStringParameters": multi,
            "queryStringParameters": st.one_of(st.none(), QUERY),
            "headers": st.fixed_dictionaries({"Host": st.just("evil.example")}),
            "body": st.text(max_size=20),
        },
    )


def v2_events(path: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    http = weighted(
        (4, st.fixed_dictionaries({"method": METHOD}, optional={"path": path})),
        (1, st.fixed_dictionaries({}, optional={"path": path})),
        (1, WRONG),
    )
    context = weighted(
        (5, st.fixed_dictionaries({"http": http}, optional={"requestId": st.uuids().map(str)})),
        (1, st.fixed_dictionaries({}, optional={"httpMethod": METHOD})),
        (1, WRONG),
    )
    version = weighted((6, st.just("2.0")), (1, st.sampled_from(["1.0", "2", "2.0 "])), (1, WRONG))
    return st.fixed_dictionaries(
        {"version": version, "requestContext": context},
        optional={
            "rawPath": path,
            "rawQueryString": RAW_QUERY,
            "routeKey": st.just("$default"),
            "httpMethod": METHOD,
            "headers": st.fixed_dictionaries({"host": st.just("evil.example")}),
            "isBase64Encoded": st.booleans(),
        },
    )


ODD_EVENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    HUGE,
    st.lists(JSON_ANY, max_size=4),
    DEEP.map(lambda value: [value]),
    st.builds(lambda value: {"path": value}, DEEP),
    st.builds(lambda value: {"path": "/v1/data", "query": value}, DEEP),
    st.builds(lambda value: {"path": "/v1/data", "query": {"page": value}}, DEEP),
    st.builds(lambda value: {"httpMethod": "GET", "requestContext": {}, "path": value}, DEEP),
    st.builds(lambda value: {"version": "2.0", "requestContext": value}, DEEP),
    st.builds(lambda value: {"version": "2.0", "requestContext": {"http": value}}, DEEP),
    st.dictionaries(st.text(max_size=10), JSON_ANY, max_size=6),
)
SHAPES: dict[str, Callable[[st.SearchStrategy[object]], st.SearchStrategy[object]]] = {
    "direct": direct_events,
    "v1": v1_events,
    "v2": v2_events,
}


@lru_cache(maxsize=8)
def events_of(shape: str, extra_authority: str) -> st.SearchStrategy[object]:
    """Events of one shape; some paths name the second API's real address."""
    if shape == "odd":
        return ODD_EVENTS
    return SHAPES[shape](path_values(extra_authority))


# -- what an answer must look like --------------------------------------------------------------


def proxy_kind(evt: object) -> str | None:
    """The documented proxy shapes: "v2" (version 2.0 with requestContext.http), "v1", or None."""
    if not isinstance(evt, dict) or not isinstance(evt.get("requestContext"), dict):
        return None
    if evt.get("version") == "2.0" and "http" in evt["requestContext"]:
        return "v2"
    return "v1" if "httpMethod" in evt else None


def expectations(evt: object) -> tuple[frozenset[str] | None, object]:
    """The codes the answer must have (None: it may be served), and the path the event names."""
    if not isinstance(evt, dict):
        return frozenset({"BAD_REQUEST"}), None
    kind = proxy_kind(evt)
    if kind == "v2":
        http = evt["requestContext"]["http"]
        method = http.get("method") if isinstance(http, dict) else None
        path = evt.get("rawPath")
    elif kind == "v1":
        method, path = evt.get("httpMethod"), evt.get("path")
    else:
        method, path = "GET", evt.get("path")
        if set(evt) - DIRECT_KEYS:
            return frozenset({"BAD_REQUEST"}), path
        if set(evt) - {"path", "query"}:
            return None, path  # a write's or a collection's keys: served only where allowed
        if path is None and evt.get("query") is not None:
            return frozenset({"BAD_REQUEST"}), path
    if method != "GET":
        # Refused: not a route method, not routed for this path, or its body or path is bad.
        return REFUSED, path
    if kind is not None and evt.get("body"):
        return frozenset({"BAD_REQUEST", "REQUEST_TOO_LARGE"}), path
    if path is not None and not isinstance(path, str):
        return frozenset({"BAD_REQUEST"}), path
    if path is not None and not independently_allowed(ALLOWED_PATHS, path):
        return frozenset({"BAD_REQUEST", "PATH_NOT_ALLOWED"}), path
    return None, path


class Recorder:
    """Records the URLs the bridge gives its API client (a wrapper: behaviour unchanged)."""

    def __init__(self, harness: Harness) -> None:
        self.urls: list[str] = []
        api = harness.bridge.api
        original = api.exchange

        def exchange(url: str, outgoing: Any, **kwargs: Any) -> Any:
            self.urls.append(url)
            return original(url, outgoing, **kwargs)

        api.exchange = exchange  # type: ignore[method-assign]


@pytest.fixture
def recorder(harness: Harness) -> Recorder:
    return Recorder(harness)


def invoke(harness: Harness, evt: object) -> tuple[object, str]:
    """The real handler in the harness's environment; returns (answer, the request id)."""
    context = LambdaContext()
    handler.set_bridge(harness.bridge)
    return handler.lambda_handler(evt, context), context.aws_request_id


def check_answer(
    api_origin: str, urls: list[str], evt: object, answer: object, request_id: str
) -> None:
    """The answer's shape and code, and the one URL the bridge built if it was not refused."""
    assert isinstance(answer, dict)
    json.dumps(answer)  # Lambda must be able to serialise it
    status = answer["statusCode"]
    assert isinstance(status, int)
    kind = proxy_kind(evt)
    if kind:
        assert answer["headers"]["X-Request-ID"] == request_id
        body = json.loads(answer["body"])
    else:
        body = answer["body"]
    code = None
    if status == 200:
        if not kind:
            assert answer["meta"]["request_id"] == request_id
    else:
        error = body["error"]
        assert set(error) >= {"code", "stage", "message", "request_id"}, error
        assert error["request_id"] == request_id
        assert isinstance(error["message"], str)
        code = error["code"]
        assert code in REFUSED | UPSTREAM_ANSWERS, error
        assert status == CATALOG[code].status
        if code in REFUSED:  # the caller's request; asking for S3 without a bucket: delivery
            assert error["stage"] == (
                "delivery" if code == "DELIVERY_NOT_CONFIGURED" else "request"
            )
    tally(f"{kind or 'direct'}: {code or 'served'}")
    expected, path = expectations(evt)
    if expected is not None:
        assert code in expected, (code, expected)
    if code in REFUSED:
        assert urls == []  # refused before any I/O
        return
    assert len(urls) == 1
    target = urllib.parse.urlsplit(urls[0])
    assert f"{target.scheme}://{target.netloc}" == api_origin
    wanted = "/v1/data" if path is None else path
    assert isinstance(wanted, str)
    assert decoded_segments(target.path) == decoded_segments(wanted)  # not repaired


def check_servers(stack: LocalStack, extra_api: SampleApi, since: int) -> int:
    """Every API request since ``since`` is a GET of an allowed path on the API's own host."""
    requests = stack.api.requests[since:]
    for request in requests:
        assert request.method == "GET"
        assert request.headers.get("host") == f"{stack.api.host}:{stack.api.port}"
        segments = decoded_segments(request.path)
        assert segments is not None, request.path
        assert all(clean_segment(s) for s in segments), request.path
        assert pattern_allows(ALLOWED_PATHS, segments), request.path
        for key, values in request.query.items():
            assert not any(is_control(c) for text in (key, *values) for c in text)
    assert extra_api.requests == []
    return len(requests)


def run_event(
    stack: LocalStack, extra_api: SampleApi, harness: Harness, recorder: Recorder, evt: object
) -> None:
    """One invocation of the real handler, and every property of it."""
    extra_api.clear_requests()
    since = len(stack.api.requests)
    recorder.urls.clear()
    answer, request_id = invoke(harness, evt)  # an exception here fails the test
    check_answer(stack.api.base_url, recorder.urls, evt, answer, request_id)
    assert check_servers(stack, extra_api, since) == len(recorder.urls)


# -- the handler, over real sockets -------------------------------------------------------------


@settings(SOCKETS, max_examples=300)
@given(data=st.data())
def test_handler_on_direct_events(
    stack: LocalStack,
    extra_api: SampleApi,
    harness: Harness,
    recorder: Recorder,
    data: st.DataObject,
) -> None:
    """Direct invocations: hostile or wrong-typed 'path' and 'query', extra keys."""
    evt = data.draw(events_of("direct", f"{extra_api.host}:{extra_api.port}"), label="event")
    run_event(stack, extra_api, harness, recorder, evt)


@SOCKETS
@given(data=st.data())
def test_handler_on_api_gateway_v1_events(
    stack: LocalStack,
    extra_api: SampleApi,
    harness: Harness,
    recorder: Recorder,
    data: st.DataObject,
) -> None:
    """API Gateway REST (v1) proxy events: hostile 'path', queries and methods."""
    evt = data.draw(events_of("v1", f"{extra_api.host}:{extra_api.port}"), label="event")
    run_event(stack, extra_api, harness, recorder, evt)


@SOCKETS
@given(data=st.data())
def test_handler_on_http_api_v2_events(
    stack: LocalStack,
    extra_api: SampleApi,
    harness: Harness,
    recorder: Recorder,
    data: st.DataObject,
) -> None:
    """HTTP API v2 / Function URL events: hostile rawPath, rawQueryString and methods."""
    evt = data.draw(events_of("v2", f"{extra_api.host}:{extra_api.port}"), label="event")
    run_event(stack, extra_api, harness, recorder, evt)


@settings(SOCKETS, max_examples=150)
@given(evt=ODD_EVENTS)
def test_handler_on_odd_events(
    stack: LocalStack, extra_api: SampleApi, harness: Harness, recorder: Recorder, evt: object
) -> None:
    """Not an object, 100 KB strings, values nested 50-400 levels deep, malformed proxy shapes."""
    run_event(stack, extra_api, harness, recorder, evt)


@settings(SOCKETS, max_examples=50)
@given(
    st.one_of(
        st.builds(lambda c: {"path": f"/v1/items/{c}"}, SURROGATE),
        st.builds(lambda c: {"path": "/v1/items", "query": {"page": c}}, SURROGATE),
        st.builds(lambda c: {"path": "/v1/items", "query": {c: "1"}}, SURROGATE),
        st.builds(lambda c: {"path": f"/v1/{c}"}, SURROGATE),
    )
)
@example({"path": "/v1/items/\ud800"})
def test_handler_refuses_lone_surrogates(
    stack: LocalStack, extra_api: SampleApi, harness: Harness, evt: dict[str, Any]
) -> None:
    since = len(stack.api.requests)
    answer, _ = invoke(harness, evt)
    assert isinstance(answer, dict)
    assert answer["body"]["error"]["code"] in {"BAD_REQUEST", "PATH_NOT_ALLOWED"}
    assert check_servers(stack, extra_api, since) == 0

"""Pins each server model on known examples, so a change to a model is a visible decision.

The corpus tests trust these models to say which paths are dangerous; a model that quietly
stopped resolving ``..;`` would make every "nothing was served" result meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import pytest

from okta_bridge_dev.emulators.pki import LocalCA, server_context
from okta_bridge_dev.emulators.routing import RecordedRequest
from okta_bridge_dev.emulators.sample_api import InvalidRequestTarget, SampleApi, servlet_path
from tests.security.corpus import PAYLOADS
from tests.security.normalizers import (
    MODELS,
    Normalizer,
    all_normalisations,
    aspnet,
    go,
    nginx,
    node,
    servlet,
)

FULLWIDTH_DOTS = "\uff0e\uff0e"
TWO_DOT_LEADER = "\u2025"
DIVISION_SLASH = "\u2215"
SET_MINUS = "\u2216"


def _cases(model: Normalizer, table: Mapping[str, str | None]) -> list[object]:
    return [
        pytest.param(model, raw, expected, id=f"{model.__name__}:{raw!r}")
        for raw, expected in table.items()
    ]


SERVLET = {
    "/v1/items/..;/..;/admin/keys": "/admin/keys",
    "/v1/items/..;x=1/..;jsessionid=0AB/admin/keys": "/admin/keys",
    "/v1/items/;/x": "/v1/items/x",
    "/v1/items/;jsessionid=1/../../../internal/config": "/internal/config",
    "/v1/items/%2e%2e/%2E%2E/admin/keys": "/admin/keys",
    "/v1/items/.%2e/%2e./admin/keys": "/admin/keys",
    "/v1/items/..%3b/x": "/v1/items/..;/x",  # decoded after the parameters were cut
    "/v1/items//..//../admin/keys": "/admin/keys",  # "//" merged before ".." is resolved
    "/v1/items/../../../admin/keys": "/admin/keys",  # above the root: the root
    "/v1/items/7/": "/v1/items/7",
    "/v1/items/x/.": "/v1/items/x",
    "/v1/items/..\\..\\admin": "/v1/items/..\\..\\admin",  # a backslash is a character
    "/v1/items/caf%C3%A9": "/v1/items/caf\u00e9",
    "/v1/items/caf\u00e9": "/v1/items/caf\u00e9",
    "http://api.internal:8443/admin/keys?x=1": "/admin/keys",
    "/v1/items/..;/..;/admin/keys#/v1/items": "/admin/keys",
    "/v1/items/..;/..;/admin/keys?/v1/items": "/admin/keys",
    "/v1/items/..%2f..%2fadmin/keys": None,  # Tomcat rejects an encoded slash...
    "/v1/items/..%5Cadmin": None,  # ...and an encoded backslash
    "/v1/items/%zz": None,
    "/v1/items/%": None,
    "/v1/items/%ff": None,
    "/v1/items/%c0%ae%c0%ae/admin": None,  # overlong UTF-8 is not UTF-8
    "/v1/items/%u002e": None,
    "/v1/items/%00/../x": None,
    "v1/items": None,
}

NGINX = {
    "/v1/items/%2e%2e/%2e%2e/admin/keys": "/admin/keys",
    "/v1/items/.%2E/%2e./admin/keys": "/admin/keys",
    "/v1/items/..%2f..%2fadmin/keys": "/admin/keys",
    "/v1/items/%2f%2e%2e%2f%2e%2e%2finternal/config": "/internal/config",
    "/v1/items//x///y": "/v1/items/x/y",
    "/v1/items/..//../admin/keys": "/admin/keys",
    "/v1/items/..;/..;/admin/keys": "/v1/items/..;/..;/admin/keys",
    "/v1/items/..\\..\\admin": "/v1/items/..\\..\\admin",
    "/v1/items/../../../admin/keys": None,  # above the root: 400
    "/v1/items/x/..": "/v1/items/",
    "/v1/items/x/.": "/v1/items/x/",
    "/v1/items/..?x=1": "/v1/",
    "/v1/items/7#/../../../admin/keys": "/v1/items/7",
    "/v1/items/..%3f/..%3f/admin": "/v1/items/..?/..?/admin",  # a decoded "?" is data
    "/v1/items/%23x": "/v1/items/#x",
    "/v1/items/%00": None,
    "/v1/items/%zz": None,
    "/v1/items/%2": None,
    "/v1/items/%ff": "/v1/items/\udcff",
    "http://api.internal/internal/config": "/internal/config",
}

NODE = {
    "/v1/items/%2e%2e/%2E./admin/keys": "/admin/keys",
    "/v1/items/.%2e/.%2E/admin/keys": "/admin/keys",
    "/v1/items/..\\..\\admin\\keys": "/admin/keys",
    "/v1/items/.\t./.\n./admin/keys": "/admin/keys",  # tabs and newlines are removed
    "/v1/items/..%09/x": "/v1/items/..\t/x",
    "/v1/items//x": "/v1/items//x",  # WHATWG keeps empty segments
    "/v1/items//../x": "/v1/items/x",
    "/v1/items/..;/x": "/v1/items/..;/x",
    "/v1/items/Foo/": "/v1/items/foo",  # Express: case-insensitive, not strict
    "/v1/items/x/..": "/v1/items",
    "/v1/items/..%2f..%2fadmin": "/v1/items/../../admin",  # decoded after resolution
    "/v1/items/../../../admin/keys": "/admin/keys",
    "/v1/items/a b": "/v1/items/a b",
    "  /v1/data\t ": "/v1/data",
    "//evil.example/admin/keys": "/admin/keys",
    "http://api.internal/admin/keys": "/admin/keys",
    "/v1/items/7#/../../../admin/keys": "/v1/items/7",
    "/v1/items/%ff": None,  # decodeURIComponent throws
    "/v1/items/%u002e": None,
    "javascript:alert(1)": None,
}

GO = {
    "/v1/items/..%2f..%2fadmin/keys": "/admin/keys",
    "/v1/items/%2e%2e/%2e%2e/admin/keys": "/admin/keys",
    "/v1/items/7#/../../../admin/keys": "/admin/keys",  # "#" is not special to Go
    "/v1/items/x/": "/v1/items/x/",
    "/v1/items//x": "/v1/items/x",
    "/v1/items/..;/x": "/v1/items/..;/x",
    "/v1/items/..\\..\\admin": "/v1/items/..\\..\\admin",
    "/v1/items/%00/../x": "/v1/items/x",
    "/v1/items/../../../admin/keys": "/admin/keys",
    "/v1/items/?/../../admin/keys": "/v1/items/",
    "/v1/items/%ff": "/v1/items/\udcff",
    "/v1/items/%zz": None,
    "v1/items": None,
}

ASPNET = {
    "/v1/items/..%5c..%5cadmin/keys": "/admin/keys",
    "/v1/items/..\\..\\admin\\keys": "/admin/keys",
    "/v1/items/..%2f..%2fadmin/keys": "/admin/keys",
    "/v1/items/%u002e%u002e/%U002E%U002E/admin/keys": "/admin/keys",
    "/v1/items/..%u2215..%u2216admin/keys": "/admin/keys",
    "/v1/items/%c0%ae%c0%ae/%c0%ae%c0%ae/admin/keys": "/admin/keys",
    "/v1/items/..%c0%af..%c1%9cadmin/keys": "/admin/keys",
    f"/v1/items/{FULLWIDTH_DOTS}/{TWO_DOT_LEADER}/admin/keys": "/admin/keys",
    f"/v1/items/..{DIVISION_SLASH}..{SET_MINUS}admin/keys": "/admin/keys",
    "/v1/items/%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/internal/config": "/internal/config",
    "/v1/items/.. /.../admin./keys%20": "/admin/keys",
    "/v1/items/....//....//admin/keys": "/admin/keys",
    "/v1/items/../../ADMIN/Keys/": "/admin/keys",
    "/v1/items/..;/x": "/v1/items/..;/x",
    "/v1/items/%zz": "/v1/items/%zz",  # malformed escapes stay literal
    "/v1/items/%ff": "/v1/items/\u00ff",  # not UTF-8: the ANSI code page
    "/v1/items/7": "/v1/items/7",
}


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    [
        *_cases(servlet, SERVLET),
        *_cases(nginx, NGINX),
        *_cases(node, NODE),
        *_cases(go, GO),
        *_cases(aspnet, ASPNET),
    ],
)
def test_model_pins(model: Normalizer, raw: str, expected: str | None) -> None:
    assert model(raw) == expected


def test_servlet_can_decode_encoded_slashes() -> None:
    """``encoded_slash="decode"`` (Tomcat's opt-in) makes ``%2F`` a separator, ``%5C`` data."""
    assert servlet("/v1/items/..%2f..%2fadmin/keys", encoded_slash="decode") == "/admin/keys"
    assert servlet("/v1/items/..%5c..%5cadmin", encoded_slash="decode") == "/v1/items/..\\..\\admin"


@pytest.mark.parametrize("safe", ["/v1/data", "/v1/items", "/v1/items/7", "/v1/items/a/b"])
def test_plain_allowed_paths_are_left_alone(safe: str) -> None:
    """A model that rewrote ordinary paths would flag everything and prove nothing."""
    assert set(all_normalisations(safe).values()) == {safe}


def test_all_normalisations_runs_every_model() -> None:
    raw = "/v1/items/..;/..;/admin/keys"
    assert all_normalisations(raw) == {name: model(raw) for name, model in MODELS.items()}
    assert list(MODELS) == ["servlet", "nginx", "node", "go", "aspnet"]


def test_models_answer_every_payload() -> None:
    """The corpus is every kind of malformed input: each model returns a path or None for it."""
    odd = {
        (raw, server, path)
        for raw in PAYLOADS
        for server, path in all_normalisations(raw).items()
        if path is not None and not path.startswith("/")
    }
    assert odd == set()


def _servlet_api(raw: str) -> str | None:
    """``SampleApi(routing="servlet")``'s reading of ``raw`` sent as UTF-8 bytes."""
    try:
        return servlet_path(raw.encode("utf-8").decode("latin-1"))
    except InvalidRequestTarget:
        return None


def test_sample_api_routes_like_the_servlet_model() -> None:
    """The servlet-mode sample API and this model are written separately; they must agree, or a
    test through the API would not be testing what the model says is dangerous."""
    extra = ["/v1/items/..%5c..%5cadmin", "/v1/items/%zz", "/v1/items/%00", "v1/items", "/a;b/c"]
    disagreements = {
        raw: (_servlet_api(raw), servlet(raw, encoded_slash="decode"))
        for raw in (*PAYLOADS, *extra, *SERVLET)
        if _servlet_api(raw) != servlet(raw, encoded_slash="decode")
    }
    assert disagreements == {}


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


def _sample_api(ca: LocalCA, routing: str) -> SampleApi:
    """An unstarted API: ``route`` and ``handle`` need no socket, and no token means no JWKS."""
    return SampleApi(
        server_context(ca.issue("api")),
        issuer="https://127.0.0.1:1/oauth2/default",
        jwks_url="https://127.0.0.1:1/oauth2/default/v1/keys",
        ca_bundle=ca.ca_pem_path,
        routing=routing,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def apis(local_ca: LocalCA) -> dict[str, SampleApi]:
    return {routing: _sample_api(local_ca, routing) for routing in ("exact", "servlet")}


def _received(raw_target: str) -> RecordedRequest:
    """A request as ``servers`` records it (``path`` is the stdlib's reading of the target)."""
    return RecordedRequest("GET", urlsplit(raw_target).path, {}, {}, b"", raw_target=raw_target)


@pytest.mark.parametrize(
    ("raw_target", "exact", "servlet_route"),
    [
        ("/admin/keys", "admin", "admin"),
        ("/internal/config", "internal", "internal"),
        ("/v1/items/..;/..;/admin/keys", "not_found", "admin"),
        ("/v1/items/%2e%2e/%2e%2e/internal/config", "not_found", "internal"),
        ("/v1/items/..%2f..%2fadmin/keys", "not_found", "admin"),
        ("/v1/items/x;y/../7", "not_found", "item"),
        ("/v1/data;jsessionid=1", "not_found", "data"),
        ("/v1/items?page=2", "items", "items"),
        ("/v1/items/%ff", "item", "bad_request"),
        ("/v1/items/%00", "item", "bad_request"),
    ],
)
def test_sample_api_routes(
    apis: dict[str, SampleApi], raw_target: str, exact: str, servlet_route: str
) -> None:
    request = _received(raw_target)
    assert apis["exact"].route(request).name == exact
    assert apis["servlet"].route(request).name == servlet_route
    assert request.raw_path == raw_target.partition("?")[0]


def test_sample_api_guards_the_protected_routes(apis: dict[str, SampleApi]) -> None:
    """The protected resources sit behind the same token check as every route; a servlet 400
    comes from the container, before any token check."""
    for api in apis.values():
        assert api.handle(_received("/admin/keys")).status == 401
        assert api.handle(_received("/internal/config")).status == 401
    assert apis["servlet"].handle(_received("/v1/items/..;/..;/admin/keys")).status == 401
    assert apis["servlet"].handle(_received("/v1/items/%ff")).status == 400


def test_sample_api_refuses_an_unknown_routing(local_ca: LocalCA) -> None:
    with pytest.raises(ValueError, match="routing"):
        _sample_api(local_ca, "tomcat")

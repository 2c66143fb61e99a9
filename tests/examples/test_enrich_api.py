"""examples/enrich-api: 200 enriched; 400, 404 and 502 with only a code and a hint; no leaks."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from okta_bridge.errors import CATALOG
from okta_bridge_dev.emulators.faults import Fault
from okta_bridge_dev.emulators.stack import LocalStack
from tests.examples.conftest import LambdaContext


@pytest.fixture
def enrich(
    lambda_env: Callable[..., None], load_example: Callable[[str], ModuleType]
) -> Callable[..., ModuleType]:
    """The example loaded as in Lambda, with the template's ``BRIDGE_ALLOWED_PATHS``."""

    def build(kind: str = "basic") -> ModuleType:
        lambda_env(kind, BRIDGE_ALLOWED_PATHS="/v1/items/*")
        return load_example("enrich-api")

    return build


def get_record(module: ModuleType, record_id: str | None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) ``GET /records/{id}`` event through the handler."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "GET /records/{id}",
        "rawPath": f"/records/{record_id}",
        "pathParameters": {"id": record_id} if record_id is not None else None,
        "requestContext": {"http": {"method": "GET"}, "requestId": "api-req"},
    }
    answer: dict[str, Any] = module.handler(event, LambdaContext("req-enrich"))
    return answer


def body(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])


@pytest.mark.parametrize(
    ("record_id", "tier"), [("5", "small"), ("15", "medium"), ("20", "large"), ("25", "large")]
)
def test_a_record_is_answered_enriched(
    stack: LocalStack, enrich: Callable[..., ModuleType], record_id: str, tier: str
) -> None:
    module = enrich()
    answer = get_record(module, record_id)
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    number = int(record_id)
    name = f"item-{number:02d}"
    assert body(answer) == {
        "id": number,
        "name": name,
        "value": number * number,
        "derived": {"tier": tier, "label": f"{name} ({tier})"},
    }
    assert [request.path for request in stack.api.requests] == [f"/v1/items/{record_id}"]


def test_a_record_the_api_does_not_have_is_404_with_only_a_code_and_a_hint(
    stack: LocalStack, enrich: Callable[..., ModuleType]
) -> None:
    answer = get_record(enrich(), "26")
    assert answer["statusCode"] == 404
    assert body(answer) == {
        "error": {"code": "UPSTREAM_NOT_FOUND", "hint": CATALOG["UPSTREAM_NOT_FOUND"].hint}
    }
    assert stack.api.counts["item"] == 1


@pytest.mark.parametrize(
    "record_id",
    [
        None,
        "",
        "abc",
        "0",
        "07",
        "-1",
        "1.5",
        "1234567890",
        "1/..",
        "..%2Fadmin",
        "1 ",
        "\uff11",
    ],  # the last: a full-width digit one,
)
def test_a_bad_id_is_400_and_the_api_is_never_asked(
    stack: LocalStack, enrich: Callable[..., ModuleType], record_id: str | None
) -> None:
    module = enrich()
    stack.reset_counts()
    answer = get_record(module, record_id)
    assert answer["statusCode"] == 400
    assert body(answer)["error"]["code"] == "BAD_RECORD_ID"
    assert set(body(answer)["error"]) == {"code", "hint"}
    assert sum(stack.api.counts.values()) == 0
    assert stack.okta.counts["token"] == 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (
            Fault(match="/v1/items", status=500, body=b'{"detail": "trace"}', times=10),
            "UPSTREAM_ERROR",
        ),
        (Fault(match="/v1/items", status=403, body=b"{}", times=10), "UPSTREAM_FORBIDDEN"),
    ],
)
def test_other_api_failures_are_502_with_only_a_code_and_a_hint(
    stack: LocalStack, enrich: Callable[..., ModuleType], fault: Fault, code: str
) -> None:
    module = enrich()
    stack.api.inject(fault)
    answer = get_record(module, "3")
    assert answer["statusCode"] == 502
    assert body(answer) == {"error": {"code": code, "hint": CATALOG[code].hint}}


def test_rejected_credentials_are_502_with_only_a_code_and_a_hint(
    stack: LocalStack, enrich: Callable[..., ModuleType]
) -> None:
    module = enrich()
    wrong = stack.secret_value("basic") | {"client_secret": "wrong-but-still-secret-0002"}
    stack.secrets_manager.put_secret("local/okta_api_creds/basic", wrong)
    answer = get_record(module, "3")
    assert answer["statusCode"] == 502
    assert body(answer) == {
        "error": {"code": "TOKEN_REJECTED", "hint": CATALOG["TOKEN_REJECTED"].hint}
    }
    assert sum(stack.api.counts.values()) == 0


def test_no_secret_material_or_internals_in_responses_or_logs(
    stack: LocalStack,
    enrich: Callable[..., ModuleType],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    issued_before = len(stack.okta.issued_tokens)
    answers = []
    for kind in ("basic", "post", "jwt-rs256", "jwt-es256", "password"):
        module = enrich(kind)
        answers += [get_record(module, "1"), get_record(module, "99"), get_record(module, "x")]
        stack.api.inject(Fault(status=401, body=b"{}", times=1))
        answers.append(get_record(module, "2"))  # a token minted moments ago: not re-minted
        stack.api.inject(Fault(status=500, body=b'{"detail": "upstream trace"}', times=10))
        answers.append(get_record(module, "3"))
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    responses = json.dumps(answers)
    material = stack.all_secret_material()
    assert len(stack.okta.issued_tokens) - issued_before >= 5  # one or more per kind
    assert [m[:12] + "..." for m in material if m in logs + responses] == []
    # Error bodies hold a code and a hint only: no host, path, upstream text or message.
    for internal in (stack.api.base_url, stack.okta.token_url, "127.0.0.1", "trace", "/v1/"):
        assert internal not in responses
    assert [a["statusCode"] for a in answers[:5]] == [200, 404, 400, 502, 502]
    assert body(answers[3])["error"]["code"] == "UPSTREAM_UNAUTHORIZED"
    # The flows did log: the scan looked at real output.
    assert "record not read" in caplog.text
    assert "token issued" in logs

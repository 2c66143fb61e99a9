from __future__ import annotations

import json
import logging

import pytest

from okta_bridge.logs import REDACTED, JsonFormatter, Redactor, configure, get_logger, request_scope

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def test_registered_values_and_pem_lines_are_scrubbed() -> None:
    redactor = Redactor()
    redactor.register(["client-secret-1234", "line-one-of-key-material\nline-two-of-key-xx"])
    text = redactor.text("a client-secret-1234 b line-two-of-key-xx c")
    assert "client-secret-1234" not in text
    assert "line-two-of-key-xx" not in text
    assert text.count(REDACTED) == 2


@pytest.mark.parametrize(
    "leak",
    [JWT, PEM, "Bearer abcdefghijklmnop", "basic dXNlcjpwYXNzd29yZA=="],
)
def test_shapes_of_secrets_are_scrubbed_without_registration(leak: str) -> None:
    assert leak not in Redactor().text(f"before {leak} after")


def test_sensitive_keys_lose_their_values_at_any_depth() -> None:
    data = {
        "client_secret": "x",
        "nested": [{"Authorization": "y", "access_token": 1, "ok": "visible"}],
        "password": None,
    }
    clean = Redactor().value(data)
    assert clean == {
        "client_secret": REDACTED,
        "nested": [{"Authorization": REDACTED, "access_token": REDACTED, "ok": "visible"}],
        "password": REDACTED,
    }


def test_literal_registry_is_bounded() -> None:
    redactor = Redactor()
    redactor.register([f"value-{i:04d}" for i in range(200)])
    assert "value-0199" not in redactor.text("value-0199")
    assert "value-0000" in redactor.text("value-0000")


def test_json_lines_carry_request_id_and_extras(capsys: pytest.CaptureFixture[str]) -> None:
    configure("INFO")
    with request_scope("req-42"):
        get_logger("t").info("hello %s", "world", extra={"ms": 3, "token": JWT})
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-42"
    assert line["ms"] == 3
    assert line["token"] == REDACTED
    assert line["level"] == "INFO"


def test_exceptions_are_logged_by_type_with_redacted_traceback() -> None:
    error = ValueError(f"boom {JWT}")
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), None)
    record.exc_info = (ValueError, error, None)
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError"
    assert JWT not in line["traceback"]

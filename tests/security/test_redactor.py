"""Finding 4: the redactor never forgets a credential.

Registered values used to live in one bounded set shared with the tokens, so after 64 tokens
(three days of a warm environment, or minutes of forced 401s) the client secret and the password
were no longer scrubbed, and nothing else would catch them. Credentials are now pinned for the
life of the environment, and only tokens rotate through the bounded set.
"""

from __future__ import annotations

import pytest

from okta_bridge.logs import REDACTED, REDACTOR, get_logger
from okta_bridge.transport.deadline import Deadline
from okta_bridge_dev.emulators.stack import LocalStack
from tests.security.conftest import bridge_for

TOKENS = 200


@pytest.mark.parametrize(
    ("kind", "secret_key"), [("basic", "client_secret"), ("password", "password")]
)
def test_credentials_stay_scrubbed_after_200_tokens(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], kind: str, secret_key: str
) -> None:
    harness = bridge_for(stack, kind, env={"BRIDGE_TOKEN_BUDGET_PER_MINUTE": "600"})
    assert harness.invoke({})["statusCode"] == 200
    tokens, deadline = harness.bridge.tokens, Deadline(60.0)
    for _ in range(TOKENS):
        tokens.invalidate(tokens.get(deadline))
        tokens.get(deadline)
    assert stack.okta.counts["token"] >= TOKENS
    secret = stack.secret_value(kind)[secret_key]
    capsys.readouterr()
    get_logger("security").warning(f"oops, a credential in a message: {secret}")
    out = capsys.readouterr().out
    assert secret not in out
    assert REDACTED in out
    assert REDACTOR.text(f"x {secret} y") == f"x {REDACTED} y"


def test_old_tokens_still_leave_through_the_pattern_once_forgotten() -> None:
    # A token dropped from the bounded set is a JWT, which the JWT pattern removes anyway.
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    REDACTOR.register([jwt_like])
    for index in range(100):
        REDACTOR.register([f"another-token-value-{index:04d}"])
    assert REDACTOR.text(jwt_like) == REDACTED

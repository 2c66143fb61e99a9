"""IAM policy statements as the template tests read them: the few condition operators the
secret and key policies use, evaluated as IAM does, for a request made over TLS."""

from __future__ import annotations

import fnmatch

from tests.support.cfn import Json


def as_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else [value]


def denied(
    statements: list[dict[str, Json]],
    principal: str,
    action: str | None = None,
    via: tuple[str, ...] = (),
) -> bool:
    """Whether a Deny statement matches a TLS request by ``principal`` through ``via``, for
    ``action`` (None: whatever action the statement names).

    Action and NotAction with "*" wildcards; Arn(Not)Like with "*" and "?" wildcards;
    ForAllValues:StringNotEquals is true when the key is absent (a request made directly has no
    aws:CalledVia).
    """
    context = {
        "aws:PrincipalArn": [principal],
        "aws:CalledVia": list(via),
        "aws:SecureTransport": ["true"],
    }

    def covers(statement: dict[str, Json]) -> bool:
        if action is None:
            return True
        if "NotAction" in statement:
            return not any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["NotAction"]))
        return any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["Action"]))

    def holds(operator: str, key: str, expected: Json) -> bool:
        patterns = [str(p) for p in as_list(expected)]
        found = context[key]
        if operator == "ArnLike":
            return any(fnmatch.fnmatchcase(v, p) for v in found for p in patterns)
        if operator == "ArnNotLike":
            return not any(fnmatch.fnmatchcase(v, p) for v in found for p in patterns)
        if operator == "ForAllValues:StringNotEquals":
            return all(v not in patterns for v in found)
        if operator == "Bool":
            return any(v in patterns for v in found)
        raise AssertionError(f"the test does not know {operator}")

    return any(
        statement["Effect"] == "Deny"
        and covers(statement)
        and all(
            holds(operator, key, expected)
            for operator, keys in statement.get("Condition", {}).items()
            for key, expected in keys.items()
        )
        for statement in statements
    )

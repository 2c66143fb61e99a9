"""Just enough CloudFormation to test template.yaml without AWS.

- ``load_template``: the SAM template as plain JSON-like data: the release tooling's own loader
  (``okta_bridge_dev.release.template``), so the tests read the template as ``deploy`` does.
- ``translate``: SAM -> CloudFormation with the release tooling's own translation, as
  ``make deploy`` does (the functions' ``CodeUri`` first replaced by an S3 location, as
  ``sam package`` does).
- ``Evaluator``: resolves Conditions, Rules and the intrinsic functions the template uses for
  one set of parameter values. References to resources cannot be resolved without a stack, so
  they stay symbolic: ``Ref X`` becomes ``"<X>"`` and ``GetAtt X.Y`` becomes ``"<X.Y>"``, also
  inside ``Fn::Sub`` strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import boto3

from okta_bridge_dev.release import template as sam

__all__ = [
    "ARTIFACT",
    "LAYER_ARTIFACT",
    "NO_VALUE",
    "PSEUDO",
    "EvaluationError",
    "Evaluator",
    "Json",
    "load_template",
    "parameter_errors",
    "parameter_values",
    "translate",
]

Json = Any
"""A JSON-like value: dict, list, str, int, float, bool or None."""

PSEUDO: Final = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::StackName": "okta-bridge",
    "AWS::StackId": (
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/okta-bridge/"
        "8e1f5a30-0d5c-11f0-9c5e-0a1b2c3d4e5f"
    ),
    "AWS::URLSuffix": "amazonaws.com",
}
"""The pseudo parameters of the imaginary stack the tests evaluate."""

ARTIFACT: Final = {
    "Bucket": "okta-bridge-artifacts-123456789012-eu-west-1",
    "Key": "okta-bridge/a.zip",
}
LAYER_ARTIFACT: Final = {**ARTIFACT, "Key": "okta-bridge/layer.zip"}


class NoValue:
    """``Ref AWS::NoValue``: removed from the dict or list that holds it."""

    def __repr__(self) -> str:
        return "NoValue"


NO_VALUE: Final = NoValue()
LIST_TYPE: Final = "CommaDelimitedList"
"""A parameter given as ``a,b`` whose ``Ref`` is the list ``["a", "b"]`` (``[""]`` when empty)."""
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class EvaluationError(Exception):
    """The template uses something this evaluator does not know (or uses it wrongly)."""


load_template = sam.load_template
"""The template as plain data: ``!Ref X`` as ``{"Ref": "X"}``, dates as text."""


def translate(template: Mapping[str, Json], parameters: Mapping[str, str]) -> dict[str, Json]:
    """SAM -> CloudFormation as ``make deploy`` does it: the functions' code at ``ARTIFACT``, the
    layer's at ``LAYER_ARTIFACT``, then the release tooling's translation, in the imaginary
    stack's region."""
    packaged = sam.set_code_uri(template, ARTIFACT["Bucket"], ARTIFACT["Key"], None)
    packaged = sam.set_content_uri(packaged, LAYER_ARTIFACT["Bucket"], LAYER_ARTIFACT["Key"], None)
    session = boto3.session.Session(
        region_name=PSEUDO["AWS::Region"],
        aws_access_key_id="unused",  # the template names no managed policy: IAM is never asked
        aws_secret_access_key="unused",
    )
    return sam.translate(packaged, parameters, session)


def parameter_values(template: Mapping[str, Json], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every declared parameter's value: the override, else the default (as text)."""
    declared: dict[str, Json] = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise EvaluationError(f"undeclared parameters: {sorted(unknown)}")
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    values.update(overrides)
    missing = set(declared) - set(values)
    if missing:
        raise EvaluationError(f"parameters without a value: {sorted(missing)}")
    return values


def parameter_errors(template: Mapping[str, Json], values: Mapping[str, str]) -> list[str]:
    """Values CloudFormation would refuse (AllowedValues, AllowedPattern, MinValue, MaxValue).

    AllowedPattern is matched against the whole value, as CloudFormation does (its Java regular
    expressions and Python's agree on the constructs the template uses); for a
    CommaDelimitedList, against each entry.
    """
    errors: list[str] = []
    for name, spec in template.get("Parameters", {}).items():
        value = values[name]
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(v) for v in allowed]:
            errors.append(f"{name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        entries = value.split(",") if spec.get("Type") == LIST_TYPE else [value]
        for entry in entries:
            if pattern is not None and re.fullmatch(pattern, entry) is None:
                errors.append(f"{name}={entry!r} does not match {pattern}")
        if spec.get("Type") == "Number":
            number = float(value)
            if "MinValue" in spec and number < float(spec["MinValue"]):
                errors.append(f"{name}={value} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                errors.append(f"{name}={value} is above {spec['MaxValue']}")
    return errors


class Evaluator:
    """Conditions, Rules and intrinsic functions of one template for one set of values."""

    def __init__(self, template: Mapping[str, Json], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # -- conditions and rules ------------------------------------------------------------

    def condition(self, name: str) -> bool:
        """The value of the named Condition (memoised; a cycle is an error)."""
        if name in self._conditions:
            return self._conditions[name]
        declared = self.template.get("Conditions", {})
        if name not in declared:
            raise EvaluationError(f"no condition {name}")
        if name in self._evaluating:
            raise EvaluationError(f"condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            result = self.truth(declared[name])
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def truth(self, expression: Json) -> bool:
        """A condition function: Fn::Equals/Not/And/Or, Condition, and Rules' Fn::Contains."""
        if isinstance(expression, bool):
            return expression
        if not isinstance(expression, dict) or len(expression) != 1:
            raise EvaluationError(f"not a condition: {expression!r}")
        ((function, args),) = expression.items()
        if function == "Condition":
            return self.condition(args)
        if function == "Fn::Equals":
            left, right = (self._scalar(self.value(arg)) for arg in args)
            return left == right
        if function == "Fn::Not":
            (inner,) = args
            return not self.truth(inner)
        if function == "Fn::And":
            return all(self.truth(arg) for arg in args)
        if function == "Fn::Or":
            return any(self.truth(arg) for arg in args)
        if function == "Fn::Contains":
            haystack, needle = (self.value(arg) for arg in args)
            return self._scalar(needle) in [self._scalar(item) for item in haystack]
        raise EvaluationError(f"unknown condition function {function}")

    def failed_rules(self) -> list[str]:
        """AssertDescription of every Rules assertion that fails for these values."""
        failures: list[str] = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.truth(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.truth(assertion["Assert"]):
                    failures.append(f"{name}: {assertion.get('AssertDescription', '')}")
        return failures

    # -- values ----------------------------------------------------------------------------

    def value(self, expression: Json) -> Json:
        """``expression`` with every intrinsic function resolved and NoValue removed."""
        if isinstance(expression, list):
            items = [self.value(item) for item in expression]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(expression, dict):
            return expression
        if len(expression) == 1:
            ((key, args),) = expression.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(key, args)
        resolved = {key: self.value(item) for key, item in expression.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, function: str, args: Json) -> Json:
        if function == "Ref":
            return self._ref(args)
        if function == "Fn::If":
            name, when_true, when_false = args
            return self.value(when_true if self.condition(name) else when_false)
        if function == "Fn::GetAtt":
            resource, attribute = args.split(".", 1) if isinstance(args, str) else args
            return f"<{resource}.{attribute}>"
        if function == "Fn::Sub":
            return self._sub(args)
        if function == "Fn::Join":
            separator, items = args
            return separator.join(self._scalar(item) for item in self.value(items))
        if function == "Fn::Split":
            separator, text = args
            return self._scalar(self.value(text)).split(separator)
        if function == "Fn::Select":
            index, items = args
            selected = self.value(items)
            position = int(self._scalar(self.value(index)))
            if not 0 <= position < len(selected):
                raise EvaluationError(f"Fn::Select index {position} out of {selected!r}")
            return selected[position]
        if function == "Fn::FindInMap":
            mapping, key, attribute = (self._scalar(self.value(arg)) for arg in args)
            return self.template["Mappings"][mapping][key][attribute]
        if function == "Fn::Base64":
            return self.value(args)  # kept readable: the tests read the user data
        raise EvaluationError(f"unknown intrinsic function {function}")

    def _ref(self, name: str) -> Json:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            declared = self.template.get("Parameters", {}).get(name, {})
            if declared.get("Type") == LIST_TYPE:
                return self.parameters[name].split(",")
            return self.parameters[name]
        if name in self.template.get("Resources", {}):
            return f"<{name}>"
        raise EvaluationError(f"Ref to unknown {name}")

    def _sub(self, args: Json) -> str:
        text, variables = (args, {}) if isinstance(args, str) else args
        bound = {name: self._scalar(self.value(value)) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in bound:
                return bound[name]
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return f"<{name}>"
            return self._scalar(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    @staticmethod
    def _scalar(value: Json) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise EvaluationError(f"expected a scalar, got {value!r}")

    # -- resources ---------------------------------------------------------------------------

    def resources(self) -> dict[str, dict[str, Json]]:
        """The resources created for these values, their properties resolved."""
        created: dict[str, dict[str, Json]] = {}
        for name, resource in self.template.get("Resources", {}).items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            result = dict(resource)
            result["Properties"] = self.value(resource.get("Properties", {}))
            created[name] = result
        return created

    def outputs(self) -> dict[str, Json]:
        """Output name -> resolved value, for the outputs whose Condition holds."""
        return {
            name: self.value(output["Value"])
            for name, output in self.template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }

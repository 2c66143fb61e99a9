"""The small CloudFormation evaluator the template tests rely on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cfn import EvaluationError, Evaluator, Json, parameter_errors, parameter_values

TEMPLATE: dict[str, Json] = {
    "Parameters": {
        "Name": {"Type": "String", "Default": ""},
        "List": {"Type": "String", "Default": "", "AllowedPattern": "^(|[a-z]+(,[a-z]+){0,2})$"},
        "Mode": {"Type": "String", "Default": "off", "AllowedValues": ["off", "on"]},
        "Size": {"Type": "Number", "Default": 2, "MinValue": 1, "MaxValue": 3},
    },
    "Mappings": {"Levels": {"WARNING": {"Short": "WARN"}}},
    "Conditions": {
        "HasName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]},
        "IsOn": {"Fn::Equals": [{"Ref": "Mode"}, "on"]},
        "Both": {"Fn::And": [{"Condition": "HasName"}, {"Condition": "IsOn"}]},
        "Either": {"Fn::Or": [{"Condition": "HasName"}, {"Condition": "IsOn"}]},
        "HasSecond": {
            "Fn::Not": [
                {
                    "Fn::Equals": [
                        {"Fn::Select": [1, {"Fn::Split": [",", {"Fn::Sub": "${List},,"}]}]},
                        "",
                    ]
                }
            ]
        },
        "Loop": {"Fn::Not": [{"Condition": "Loop"}]},
    },
    "Rules": {
        "OnNeedsName": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Mode"}, "on"]},
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]},
                    "AssertDescription": "on needs Name",
                }
            ],
        },
        "KnownName": {
            "Assertions": [
                {
                    "Assert": {"Fn::Contains": [["", "a", "b"], {"Ref": "Name"}]},
                    "AssertDescription": "Name is a or b",
                }
            ]
        },
    },
    "Resources": {
        "Always": {"Type": "T", "Properties": {"Name": {"Ref": "Name"}}},
        "OnlyOn": {"Type": "T", "Condition": "IsOn"},
    },
    "Outputs": {
        "Arn": {"Value": {"Fn::GetAtt": ["Always", "Arn"]}},
        "OnlyOn": {"Condition": "IsOn", "Value": {"Ref": "OnlyOn"}},
    },
}


def evaluate(**values: str) -> Evaluator:
    return Evaluator(TEMPLATE, parameter_values(TEMPLATE, values))


def test_parameter_values_take_defaults_and_refuse_unknown_names() -> None:
    assert parameter_values(TEMPLATE, {"Name": "a"}) == {
        "Name": "a",
        "List": "",
        "Mode": "off",
        "Size": "2",
    }
    with pytest.raises(EvaluationError, match="undeclared"):
        parameter_values(TEMPLATE, {"Other": "x"})
    with pytest.raises(EvaluationError, match="without a value"):
        parameter_values({"Parameters": {"Required": {"Type": "String"}}}, {})


def test_parameter_errors_check_values_patterns_and_ranges() -> None:
    assert parameter_errors(TEMPLATE, parameter_values(TEMPLATE, {})) == []
    values = parameter_values(TEMPLATE, {"List": "a,b,c,d", "Mode": "maybe", "Size": "4"})
    errors = parameter_errors(TEMPLATE, values)
    assert len(errors) == 3
    assert "List='a,b,c,d'" in errors[0]
    assert "Mode='maybe'" in errors[1]
    assert "Size=4 is above 3" in errors[2]
    assert (
        "below" in parameter_errors(TEMPLATE, {**values, "List": "", "Mode": "on", "Size": "0"})[0]
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {"HasName": False, "IsOn": False, "Both": False, "Either": False}),
        ({"Name": "a"}, {"HasName": True, "IsOn": False, "Both": False, "Either": True}),
        ({"Mode": "on"}, {"HasName": False, "IsOn": True, "Both": False, "Either": True}),
        (
            {"Name": "a", "Mode": "on"},
            {"HasName": True, "IsOn": True, "Both": True, "Either": True},
        ),
    ],
)
def test_conditions_combine(values: dict[str, str], expected: dict[str, bool]) -> None:
    evaluator = evaluate(**values)
    assert {name: evaluator.condition(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("items", "has_second"), [("", False), ("a", False), ("a,b", True), ("a,b,c", True)]
)
def test_padded_select_reads_past_the_end_as_empty(items: str, has_second: bool) -> None:
    assert evaluate(List=items).condition("HasSecond") is has_second


def test_select_out_of_range_is_an_error_as_in_cloudformation() -> None:
    evaluator = evaluate(List="a")
    with pytest.raises(EvaluationError, match="out of"):
        evaluator.value({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "List"}]}]})


def test_unknown_and_cyclic_conditions_are_errors() -> None:
    evaluator = evaluate()
    with pytest.raises(EvaluationError, match="no condition"):
        evaluator.condition("Missing")
    with pytest.raises(EvaluationError, match="itself"):
        evaluator.condition("Loop")
    with pytest.raises(EvaluationError, match="unknown condition function"):
        evaluator.truth({"Fn::Xor": [True, False]})
    with pytest.raises(EvaluationError, match="not a condition"):
        evaluator.truth("yes")


def test_values_resolve_intrinsics_and_drop_no_value() -> None:
    evaluator = evaluate(Name="a", Mode="on")
    document: Any = {
        "If": {"Fn::If": ["IsOn", "yes", "no"]},
        "Gone": {"Fn::If": ["HasSecond", "x", {"Ref": "AWS::NoValue"}]},
        "List": ["one", {"Ref": "AWS::NoValue"}, {"Fn::If": ["HasName", "two", "three"]}],
        "Join": {"Fn::Join": ["-", [{"Ref": "Name"}, {"Ref": "AWS::Region"}]]},
        "Ref": {"Ref": "Always"},
        "GetAtt": {"Fn::GetAtt": "Always.Arn"},
        "Sub": {"Fn::Sub": "${AWS::StackName}/${Name}/${Always}/${Always.Arn}/${!Literal}"},
        "SubVariables": {"Fn::Sub": ["${A}:${Name}", {"A": {"Ref": "Mode"}}]},
        "Map": {"Fn::FindInMap": ["Levels", "WARNING", "Short"]},
        "Base64": {"Fn::Base64": {"Fn::Sub": "#!/bin/sh ${Name}"}},
        "Plain": {"Key": 1, "Flag": True},
    }
    assert evaluator.value(document) == {
        "If": "yes",
        "List": ["one", "two"],
        "Join": "a-eu-west-1",
        "Ref": "<Always>",
        "GetAtt": "<Always.Arn>",
        "Sub": "okta-bridge/a/<Always>/<Always.Arn>/${Literal}",
        "SubVariables": "on:a",
        "Map": "WARN",
        "Base64": "#!/bin/sh a",
        "Plain": {"Key": 1, "Flag": True},
    }
    with pytest.raises(EvaluationError, match="unknown intrinsic"):
        evaluator.value({"Fn::GetAZs": ""})
    with pytest.raises(EvaluationError, match="unknown Nothing"):
        evaluator.value({"Ref": "Nothing"})
    with pytest.raises(EvaluationError, match="scalar"):
        evaluator.value({"Fn::Join": [",", [["nested"]]]})


def test_rules_report_the_failed_assertions() -> None:
    assert evaluate().failed_rules() == []
    assert evaluate(Mode="on").failed_rules() == ["OnNeedsName: on needs Name"]
    assert evaluate(Name="c").failed_rules() == ["KnownName: Name is a or b"]


def test_resources_and_outputs_follow_their_conditions() -> None:
    assert set(evaluate().resources()) == {"Always"}
    created = evaluate(Name="a", Mode="on").resources()
    assert set(created) == {"Always", "OnlyOn"}
    assert created["Always"]["Properties"] == {"Name": "a"}
    assert evaluate().outputs() == {"Arn": "<Always.Arn>"}
    assert evaluate(Mode="on").outputs() == {"Arn": "<Always.Arn>", "OnlyOn": "<OnlyOn>"}


LIST_TEMPLATE: dict[str, Json] = {
    "Parameters": {
        "Roles": {"Type": "CommaDelimitedList", "Default": "", "AllowedPattern": "^(|[a-z]+)$"},
    },
    "Conditions": {
        "HasRoles": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Roles"}]}, ""]}]}
    },
    "Resources": {"R": {"Type": "T", "Properties": {"Names": {"Ref": "Roles"}}}},
}


@pytest.mark.parametrize(
    ("roles", "names", "has_roles"),
    [("", [""], False), ("a", ["a"], True), ("a,b", ["a", "b"], True)],
)
def test_a_comma_delimited_list_is_a_list_checked_entry_by_entry(
    roles: str, names: list[str], has_roles: bool
) -> None:
    values = parameter_values(LIST_TEMPLATE, {"Roles": roles})
    assert parameter_errors(LIST_TEMPLATE, values) == []
    evaluated = Evaluator(LIST_TEMPLATE, values)
    assert evaluated.resources()["R"]["Properties"] == {"Names": names}
    assert evaluated.condition("HasRoles") is has_roles
    bad = parameter_values(LIST_TEMPLATE, {"Roles": f"{roles},B1"})
    assert parameter_errors(LIST_TEMPLATE, bad) == ["Roles='B1' does not match ^(|[a-z]+)$"]

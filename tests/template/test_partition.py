"""The template in any partition: no hard-coded ``arn:aws:``, no literal ``amazonaws.com`` where
the region's DNS suffix applies (``amazonaws.com.cn`` in the China regions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.support.cfn import load_template

from .conftest import TEMPLATE_PATH

GLOBAL_PRINCIPALS = frozenset(
    {
        # Service principals AWS documents in the universal form in every partition.
        "cloudwatch.amazonaws.com",
        "cloudformation.amazonaws.com",
        "dynamodb.amazonaws.com",  # TokenCache=on: AWS's key policy example for DynamoDB
        "ec2.amazonaws.com",
        "lambda.amazonaws.com",
        "secretsmanager.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
    }
)


def strings(node: Any) -> Iterator[str]:
    """Every string in the template (keys, values, the text of !Sub)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def test_no_arn_names_the_aws_partition() -> None:
    found = [s for s in strings(load_template(TEMPLATE_PATH)) if "arn:aws:" in s]
    assert not found, f"use arn:${{AWS::Partition}}: {found}"


def test_amazonaws_com_appears_only_in_global_service_principals() -> None:
    found = sorted(
        {
            s
            for s in strings(load_template(TEMPLATE_PATH))
            if "amazonaws.com" in s and s not in GLOBAL_PRINCIPALS
        }
    )
    assert not found, f"use ${{AWS::URLSuffix}} in service DNS names and kms:ViaService: {found}"


def test_regional_names_use_the_url_suffix() -> None:
    regional = [
        s for s in strings(load_template(TEMPLATE_PATH)) if "${AWS::Region}.${AWS::URLSuffix}" in s
    ]
    assert any(s.startswith("logs.") for s in regional)
    assert any(s.startswith("secretsmanager.") for s in regional)


def test_lambda_tracing_is_off_in_the_china_regions_where_lambda_has_no_x_ray() -> None:
    tracing = load_template(TEMPLATE_PATH)["Globals"]["Function"]["Tracing"]
    assert tracing == {"Fn::If": ["InAwsCn", "PassThrough", "Active"]}

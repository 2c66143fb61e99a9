"""The Lambda Invoke API emulator, as boto3 sees it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from okta_bridge_dev.emulators.lambda_service import LambdaServer
from okta_bridge_dev.emulators.stack import LocalStack


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function": context.function_name,
        "arn": context.invoked_function_arn,
    }


@pytest.fixture
def service(lambda_service: LambdaServer) -> Iterator[LambdaServer]:
    lambda_service.register("echo", echo, timeout=3.0)
    yield lambda_service
    lambda_service.unregister("echo")


@pytest.fixture
def client(stack: LocalStack, service: LambdaServer) -> Iterator[Any]:
    lambda_client = service.client(stack.ca.ca_pem_path)
    yield lambda_client
    lambda_client.close()


def invoke(client: Any, name: str, payload: bytes = b"{}") -> tuple[dict[str, Any], Any]:
    answer = client.invoke(FunctionName=name, Payload=payload)
    return answer, json.loads(answer["Payload"].read())


def test_the_handler_gets_the_event_and_a_context(client: Any, service: LambdaServer) -> None:
    answer, payload = invoke(client, "echo", b'{"path": "/v1/data"}')
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert payload["event"] == {"path": "/v1/data"}
    assert payload["request_id"] == answer["ResponseMetadata"]["RequestId"]
    assert 0 < payload["remaining_ms"] <= 3_000
    assert payload["function"] == "echo"
    assert payload["arn"] == service.function_arn("echo")


@pytest.mark.parametrize("reference", ["arn", "arn:$LATEST", "partial"])
def test_a_function_is_found_by_arn_or_partial_arn(
    client: Any, service: LambdaServer, reference: str
) -> None:
    arn = service.function_arn("echo")
    name = {"arn": arn, "arn:$LATEST": f"{arn}:$LATEST", "partial": arn.split(":", 4)[-1]}
    _, payload = invoke(client, name[reference])
    assert payload["function"] == "echo"


def test_an_empty_payload_is_an_empty_event(client: Any) -> None:
    _, payload = invoke(client, "echo", b"")
    assert payload["event"] == {}


def test_a_raising_handler_is_an_unhandled_function_error(
    client: Any, service: LambdaServer
) -> None:
    def boom(event: Any, context: Any) -> Any:
        raise KeyError("client_id")

    service.register("boom", boom)
    try:
        answer, payload = invoke(client, "boom")
    finally:
        service.unregister("boom")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'client_id'"


def test_an_answer_that_is_not_json_is_a_marshal_error(client: Any, service: LambdaServer) -> None:
    service.register("bad", lambda event, context: {"when": object()})
    try:
        answer, payload = invoke(client, "bad")
    finally:
        service.unregister("bad")
    assert answer["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"


def test_an_unknown_function_is_resource_not_found(client: Any, service: LambdaServer) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        client.invoke(FunctionName="nothing", Payload=b"{}")
    assert raised.value.response["Error"]["Message"] == (
        f"Function not found: {service.function_arn('nothing')}"
    )
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_payload_that_is_not_json_is_refused(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="echo", Payload=b"{not json")


def test_dry_run_checks_the_function_without_calling_it(client: Any) -> None:
    assert client.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204


def test_asynchronous_invocations_are_refused(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_other_operations_are_unknown(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        client.list_functions()
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"


def test_register_refuses_what_is_not_a_function_name(service: LambdaServer) -> None:
    with pytest.raises(ValueError, match="no ':' or '/'"):
        service.register("a:b", echo)
    with pytest.raises(ValueError, match="positive"):
        service.register("echo2", echo, timeout=0)


def test_the_emulator_stops_with_its_stack() -> None:
    with LocalStack() as local:
        service = local.start_lambda_service({"echo": echo})
        assert local.start_lambda_service() is service  # started once
        assert local.lambda_service is service
        assert service.running
    assert not service.running
    assert not service.errors

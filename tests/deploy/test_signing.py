"""``deploy`` with ``CodeSigningProfileVersionArn``: Signer signs both zips, the stack takes the
signed objects; an unusable profile is refused before anything is uploaded.

Against moto's server over TLS, with Signer's signing jobs from ``signer_shim``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.signer.models import signer_backends

from okta_bridge_dev.release import aws as release_aws
from okta_bridge_dev.release import signing

from .conftest import REGION, Moto, deploy_argv
from .conftest import SIGNING_PROFILE as PROFILE
from .signer_shim import Jobs
from .test_deploy import STACK, moto_user, run

pytestmark = pytest.mark.filterwarnings(
    "ignore:Tried to parse .* not supported by moto:UserWarning"
)


def session() -> Any:
    return boto3.session.Session(region_name=REGION)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waiter polls without delay (the fake job is InProgress on its first description)."""
    monkeypatch.setattr(signing, "POLL_SECONDS", 0)


Deploy = Callable[..., tuple[int, str]]


@pytest.fixture
def deploy(aws: Moto, template: Path, fake_zip: Path, fake_layer_zip: Path) -> Deploy:
    """``deploy(*"KEY=VALUE")``: the real template and the two zips, the caller as the admin."""

    def run_deploy(*parameters: str) -> tuple[int, str]:
        admin = f"AdminPrincipalArns={moto_user(aws.account)}"
        return run(*deploy_argv(STACK, fake_zip, fake_layer_zip, template, admin, *parameters))

    return run_deploy


def code_locations() -> dict[str, str]:
    """Logical id -> S3 key of every function's code and layer's content in the stack."""
    body = session().client("cloudformation").get_template(StackName=STACK)["TemplateBody"]
    keys = {}
    for logical_id, resource in body["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            keys[logical_id] = properties["Code"]["S3Key"]
        if resource["Type"] == "AWS::Lambda::LayerVersion":  # SAM appends a hash to the id
            name = "BridgeLayer" if logical_id.startswith("BridgeLayer") else logical_id
            keys[name] = properties["Content"]["S3Key"]
    return keys


def objects(bucket: str) -> list[str]:
    listed = session().client("s3").list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_signed_code_for_both_functions_and_the_layer(
    bucket: str, profile_arn: str, deploy: Deploy
) -> None:
    parameter = f"CodeSigningProfileVersionArn={profile_arn}"
    code, text = deploy(parameter)
    assert code == 0, text

    assert len(Jobs.started) == 2
    assert {job.status for job in Jobs.started} == {"Succeeded"}
    s3 = session().client("s3")
    for job in Jobs.started:
        assert job.profile_name == PROFILE
        assert job.source["bucketName"] == bucket
        head = s3.head_object(Bucket=bucket, Key=job.source["key"])
        assert job.source["version"] == head["VersionId"]  # the uploaded version, exactly
        assert job.destination == {"bucketName": bucket, "prefix": "okta-bridge/signed/"}
        line = f"signed s3://{bucket}/{job.source['key']} with {PROFILE}/"
        assert line in text
        assert f"(job {job.job_id}) -> s3://{bucket}/{job.signed_key}" in text
    signed = {job.signed_key for job in Jobs.started}
    locations = code_locations()
    assert {"BridgeFunction", "RotationFunction", "BridgeLayer"} <= set(locations)
    assert set(locations.values()) == signed
    function_job = next(j for j in Jobs.started if j.signed_key == locations["BridgeFunction"])
    layer_job = next(j for j in Jobs.started if j.signed_key == locations["BridgeLayer"])
    assert locations["RotationFunction"] == function_job.signed_key
    assert function_job.source["key"] != layer_job.source["key"]
    assert "CREATE_COMPLETE" in text

    # An unchanged build is neither uploaded nor signed again: the stack does not change.
    code, text = deploy(parameter)
    assert code == 0, text
    assert len(Jobs.started) == 2
    assert text.count("already signed s3://") == 2
    assert "no changes" in text


def test_a_failed_signing_job_stops_the_deploy_before_the_stack(
    bucket: str, profile_arn: str, deploy: Deploy
) -> None:
    Jobs.fail_next.append("Signing profile okta_bridge_release signature validity exceeded")
    code, text = deploy(
        f"CodeSigningProfileVersionArn={profile_arn}",
    )
    assert code == 1, text
    job = Jobs.started[0]
    assert (
        f"error: not deployed: signing job {job.job_id} for s3://{bucket}/{job.source['key']} "
        "failed: Signing profile okta_bridge_release signature validity exceeded"
    ) in text
    assert len(Jobs.started) == 1  # the layer was not signed after the failure
    stacks = session().client("cloudformation").list_stacks()["StackSummaries"]
    assert stacks == []


def _revoke(account: str) -> str:
    signer_backends[account][REGION].signing_profiles[PROFILE].status = "Revoked"
    return "is Revoked: Lambda accepts no new signature from it"


def _cancel(account: str) -> str:
    session().client("signer").cancel_signing_profile(profileName=PROFILE)
    return "is Canceled: Lambda accepts no new signature from it"


@pytest.mark.parametrize(
    "case",
    [
        (
            "arn:aws:signer:{region}:{account}:/signing-profiles/missing/abc123",
            None,
            "signing profile missing does not exist in account {account} (us-east-1): create it "
            "(`aws signer put-signing-profile --profile-name missing --platform-id "
            "AWSLambda-SHA384-ECDSA`) or fix CodeSigningProfileVersionArn",
        ),
        ("{profile}", _revoke, ""),
        ("{profile}", _cancel, ""),
        (
            "{unversioned}/v2other",
            None,
            "CodeSigningProfileVersionArn names version v2other but the profile's current "
            "version is {version}; set CodeSigningProfileVersionArn={profile}",
        ),
        (
            "arn:aws:signer:eu-west-1:{account}:/signing-profiles/okta_bridge_release/abc123",
            None,
            "is in eu-west-1 but the stack is in us-east-1: Signer cannot sign across regions",
        ),
    ],
    ids=["missing", "revoked", "canceled", "other-version", "other-region"],
)
def test_an_unusable_profile_is_refused_before_anything_is_uploaded(
    aws: Moto, bucket: str, profile_arn: str, deploy: Deploy, case: tuple[str, Any, str]
) -> None:
    arn, change, message = case
    if change is not None:
        message = change(aws.account)
    unversioned, version = profile_arn.rsplit("/", 1)
    values = {"profile": profile_arn, "unversioned": unversioned, "version": version}
    values |= {"account": aws.account, "region": REGION}
    code, text = deploy(
        f"CodeSigningProfileVersionArn={arn.format(**values)}",
    )
    assert code == 2, text
    assert "error: not deployed, nothing uploaded: signing profile" in text
    assert message.format(**values) in text
    assert objects(bucket) == []
    assert Jobs.started == []


def test_a_profile_for_another_platform_is_refused(aws: Moto, bucket: str, deploy: Deploy) -> None:
    created = (
        session()
        .client("signer")
        .put_signing_profile(profileName="iot", platformId="AWSIoTDeviceManagement-SHA256-ECDSA")
    )
    code, text = deploy(
        f"CodeSigningProfileVersionArn={created['profileVersionArn']}",
    )
    assert code == 2, text
    assert (
        "signing profile iot signs for platform AWSIoTDeviceManagement-SHA256-ECDSA, not "
        "AWSLambda-SHA384-ECDSA"
    ) in text
    assert objects(bucket) == []


def test_an_unversioned_bucket_is_refused_before_upload(
    aws: Moto, profile_arn: str, deploy: Deploy
) -> None:
    name = release_aws.default_bucket(aws.account, REGION)
    session().client("s3").create_bucket(Bucket=name)
    code, text = deploy(
        f"CodeSigningProfileVersionArn={profile_arn}",
    )
    assert code == 2, text
    assert f"needs a versioned artifact bucket and s3://{name} is not" in text
    assert objects(name) == []


def test_a_malformed_profile_arn_is_refused(aws: Moto, bucket: str, deploy: Deploy) -> None:
    # The template's AllowedPattern would refuse it too, but only after the upload.
    code, text = deploy(
        "CodeSigningProfileVersionArn=arn:aws:signer:us-east-1:123456789012:/signing-profiles/x",
    )
    assert code == 2, text
    assert "is not a signing profile version ARN" in text
    assert objects(bucket) == []


def test_without_the_parameter_signer_is_never_called(
    aws: Moto, bucket: str, deploy: Deploy
) -> None:
    aws.server.reset_counts()
    code, text = deploy()
    assert code == 0, text
    assert "signed" not in text
    assert Jobs.started == []
    assert not {"GetSigningProfile", "StartSigningJob", "DescribeSigningJob"} & set(
        aws.server.counts
    )
    assert not any("/signed/" in key for key in code_locations().values())


def test_profile_arns_are_parsed() -> None:
    profile = signing.parse_profile_arn(
        "arn:aws-cn:signer:cn-north-1:123456789012:/signing-profiles/okta_bridge/a1B2c3"
    )
    assert (profile.partition, profile.region, profile.account) == (
        "aws-cn",
        "cn-north-1",
        "123456789012",
    )
    assert (profile.name, profile.version) == ("okta_bridge", "a1B2c3")


def test_sign_layer_publishes_the_signed_zip_and_prints_its_arn(
    aws: Moto, bucket: str, profile_arn: str, fake_layer_zip: Path
) -> None:
    adot = fake_layer_zip.with_name("aws-otel-python-arm64-ver-1-32-0.zip")
    fake_layer_zip.rename(adot)
    code, text = run(
        "sign-layer",
        "--zip",
        str(adot),
        "--parameter",
        f"CodeSigningProfileVersionArn={profile_arn}",
    )
    assert code == 0, text
    (job,) = Jobs.started
    assert f"signed s3://{bucket}/{job.source['key']} with {PROFILE}/" in text
    arn = text.rstrip("\n").rsplit("\n", 1)[1]
    assert ":layer:signed-aws-otel-python-arm64-ver-1-32-0:1" in arn
    assert "published layer signed-aws-otel-python-arm64-ver-1-32-0 version 1 (arm64):" in text
    name, version = arn.split(":layer:", 1)[1].rsplit(":", 1)
    layer = session().client("lambda").get_layer_version(LayerName=name, VersionNumber=int(version))
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Description"].endswith(f"signed by {PROFILE}/{profile_arn.rsplit('/', 1)[1]}")


def test_sign_layer_without_a_profile_is_refused(aws: Moto, fake_layer_zip: Path) -> None:
    code, text = run("sign-layer", "--zip", str(fake_layer_zip))
    assert code == 2, text
    assert "no signing profile: set CodeSigningProfileVersionArn" in text

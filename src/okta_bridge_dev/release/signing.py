"""Code signing for ``make deploy``: AWS Signer signs the uploaded zips, the stack takes the
signed objects.

With ``CodeSigningProfileVersionArn`` set, the template gives every function a code signing
configuration in Enforce mode, so Lambda refuses unsigned code (and unsigned layers). The
profile is checked before anything is uploaded (it exists, is Active, signs for Lambda, is the
version the ARN names, in the stack's region); each uploaded object version is then signed by a
Signer job into ``<prefix>/signed/`` of the same (versioned) bucket, and the template points at
the signed object. A signed object is remembered per source object version and profile version
(``<prefix>/signed/index/``), so an unchanged build is not signed again and the stack's code
location does not change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from okta_bridge_dev.release.errors import DeployError, UsageError

__all__ = [
    "LAMBDA_PLATFORM",
    "PARAMETER",
    "Profile",
    "SignedObject",
    "Signer",
    "check_bucket_versioning",
    "for_deploy",
    "parse_profile_arn",
    "sign_upload",
]

PARAMETER = "CodeSigningProfileVersionArn"
LAMBDA_PLATFORM = "AWSLambda-SHA384-ECDSA"
"""The only Signer platform whose signatures Lambda verifies."""
POLL_SECONDS = 3.0
"""DescribeSigningJob interval (the waiter's Delay); tests set it to 0."""
TIMEOUT_SECONDS = 600.0
"""How long one signing job may take before the deploy gives up (it usually takes seconds)."""

_PROFILE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):signer:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"/signing-profiles/(?P<name>[A-Za-z0-9_]+)/(?P<version>[A-Za-z0-9]+)$"
)


@dataclass(frozen=True)
class Profile:
    """A signing profile version, as ``CodeSigningProfileVersionArn`` names it."""

    arn: str
    partition: str
    region: str
    account: str
    name: str
    version: str


@dataclass(frozen=True)
class SignedObject:
    """Where a signing job put the signed copy of one uploaded zip."""

    bucket: str
    key: str
    job_id: str
    reused: bool = False


def parse_profile_arn(arn: str) -> Profile:
    """``arn:<partition>:signer:<region>:<account>:/signing-profiles/<name>/<version>``."""
    match = _PROFILE_ARN.match(arn.strip())
    if not match:
        raise UsageError(
            f"{PARAMETER} {arn!r} is not a signing profile version ARN "
            "(arn:aws:signer:<region>:<account>:/signing-profiles/<name>/<version>): copy the "
            "profile's version ARN from `aws signer get-signing-profile --profile-name <name>`"
        )
    return Profile(arn=arn.strip(), **match.groupdict())


def check_bucket_versioning(s3: Any, bucket: str, *, account: str) -> None:
    """Signer signs one object version: refuse an artifact bucket without versioning."""
    status = s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=account).get("Status")
    if status != "Enabled":
        raise UsageError(
            f"not deployed, nothing uploaded: code signing ({PARAMETER}) needs a versioned "
            f"artifact bucket and s3://{bucket} is not (versioning "
            f"{status or 'never enabled'}): `aws s3api put-bucket-versioning --bucket {bucket} "
            "--versioning-configuration Status=Enabled`, or leave s3_bucket unset to use the "
            "default bucket (created versioned)"
        )


@dataclass
class Signer:
    """Signs uploaded zips with one profile version; ``check()`` before any upload."""

    client: Any
    s3: Any
    profile: Profile
    account: str
    region: str
    poll_seconds: float = POLL_SECONDS
    timeout_seconds: float = TIMEOUT_SECONDS

    @property
    def _owner(self) -> dict[str, str]:
        """``profileOwner`` for a profile shared from another account (else the caller's)."""
        owner = self.profile.account
        return {} if owner == self.account else {"profileOwner": owner}

    def check(self) -> None:
        """Refuse a profile Lambda would not accept signatures from, before anything is uploaded."""
        profile = self.profile
        refused = f"not deployed, nothing uploaded: signing profile {profile.name}"
        if profile.region != self.region:
            raise UsageError(
                f"{refused} is in {profile.region} but the stack is in {self.region}: Signer "
                f"cannot sign across regions; create a profile in {self.region} "
                f"(platform {LAMBDA_PLATFORM}) and set {PARAMETER} to its version ARN"
            )
        try:
            found = self.client.get_signing_profile(profileName=profile.name, **self._owner)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("ResourceNotFoundException", "NotFoundException"):
                raise
            raise UsageError(
                f"{refused} does not exist in account {profile.account} ({self.region}): "
                f"create it (`aws signer put-signing-profile --profile-name {profile.name} "
                f"--platform-id {LAMBDA_PLATFORM}`) or fix {PARAMETER}"
            ) from None
        status = str(found.get("status", ""))
        if status != "Active":
            raise UsageError(
                f"{refused} is {status or 'not active'}: Lambda accepts no new signature from "
                f"it; create a new profile and set {PARAMETER} to its version ARN"
            )
        platform = str(found.get("platformId", ""))
        if platform != LAMBDA_PLATFORM:
            raise UsageError(
                f"{refused} signs for platform {platform}, not {LAMBDA_PLATFORM}: Lambda would "
                "refuse its signatures; create a profile for that platform"
            )
        version = str(found.get("profileVersion", ""))
        if version != profile.version:
            current = found.get("profileVersionArn") or version
            raise UsageError(
                f"{refused}: {PARAMETER} names version {profile.version} but the profile's "
                f"current version is {version}; set {PARAMETER}={current}"
            )

    def sign(self, bucket: str, key: str, version: str | None, *, prefix: str) -> SignedObject:
        """The signed copy of ``s3://bucket/key`` at ``version``: reused, or signed now."""
        if not version:
            raise DeployError(
                f"s3://{bucket}/{key} has no version id: Signer signs object versions only "
                "(is the bucket versioned?)"
            )
        index_key = f"{prefix}/signed/index/{self._index_name(bucket, key, version)}.json"
        known = self._known(bucket, index_key)
        if known is not None:
            return known
        job_id = self._start(bucket, key, version, prefix=f"{prefix}/signed/")
        described = self._wait(job_id, f"s3://{bucket}/{key}")
        signed = described.get("signedObject", {}).get("s3", {})
        result = SignedObject(
            bucket=str(signed.get("bucketName") or bucket), key=str(signed["key"]), job_id=job_id
        )
        record = {"source": {"bucket": bucket, "key": key, "version": version}}
        record["signed"] = {"bucket": result.bucket, "key": result.key, "jobId": job_id}
        self.s3.put_object(
            Bucket=bucket,
            Key=index_key,
            Body=json.dumps(record).encode(),
            ContentType="application/json",
            ExpectedBucketOwner=self.account,
        )
        return result

    def _index_name(self, bucket: str, key: str, version: str) -> str:
        source = f"{bucket}/{key}?versionId={version}|{self.profile.arn}"
        return hashlib.sha256(source.encode()).hexdigest()

    def _known(self, bucket: str, index_key: str) -> SignedObject | None:
        """The signed object an earlier deploy recorded, if it is still there."""
        try:
            body = self.s3.get_object(
                Bucket=bucket, Key=index_key, ExpectedBucketOwner=self.account
            )["Body"].read()
            signed = json.loads(body)["signed"]
            self.s3.head_object(
                Bucket=signed["bucket"], Key=signed["key"], ExpectedBucketOwner=self.account
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        except (KeyError, TypeError, ValueError):
            return None  # an unreadable record: sign again
        return SignedObject(
            bucket=str(signed["bucket"]),
            key=str(signed["key"]),
            job_id=str(signed.get("jobId", "?")),
            reused=True,
        )

    def _start(self, bucket: str, key: str, version: str, *, prefix: str) -> str:
        started = self.client.start_signing_job(
            source={"s3": {"bucketName": bucket, "key": key, "version": version}},
            destination={"s3": {"bucketName": bucket, "prefix": prefix}},
            profileName=self.profile.name,
            **self._owner,
        )
        return str(started["jobId"])

    def _wait(self, job_id: str, source: str) -> dict[str, Any]:
        """DescribeSigningJob until Succeeded (the boto3 waiter), within ``timeout_seconds``."""
        delay = max(self.poll_seconds, 0.0)
        attempts = max(1, int(self.timeout_seconds / delay) if delay else 100)
        waiter = self.client.get_waiter("successful_signing_job")
        try:
            waiter.wait(jobId=job_id, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        except WaiterError as exc:
            last = exc.last_response or {}
            status = str(last.get("status", ""))
            if status == "Failed":
                reason = last.get("statusReason") or "no reason given"
                raise DeployError(
                    f"not deployed: signing job {job_id} for {source} failed: {reason}"
                ) from None
            if status == "InProgress" or not last.get("Error"):
                raise DeployError(
                    f"not deployed: signing job {job_id} for {source} is still "
                    f"{status or 'running'} after {self.timeout_seconds:.0f}s; see "
                    f"`aws signer describe-signing-job --job-id {job_id}`"
                ) from None
            error = last.get("Error", {})
            raise DeployError(
                f"not deployed: signing job {job_id} for {source}: "
                f"{error.get('Code', '?')}: {error.get('Message', '')}"
            ) from None
        described: dict[str, Any] = self.client.describe_signing_job(jobId=job_id)
        return described


def for_deploy(
    aws: Any, parameters: Mapping[str, str], account: str, *, poll_seconds: float | None = None
) -> Signer | None:
    """The checked signer when the deploy's ``CodeSigningProfileVersionArn`` is set, else None.

    Raises ``UsageError`` (nothing uploaded yet) when the profile cannot sign for this stack.
    """
    arn = parameters.get(PARAMETER, "").strip()
    if not arn:
        return None
    signer = Signer(
        client=aws.client("signer"),
        s3=aws.client("s3"),
        profile=parse_profile_arn(arn),
        account=account,
        region=aws.region,
        poll_seconds=POLL_SECONDS if poll_seconds is None else poll_seconds,
    )
    signer.check()
    return signer


def sign_upload(
    signer: Signer,
    location: tuple[str, str, str | None],
    *,
    prefix: str,
    say: Callable[[str], None],
) -> tuple[str, str, str | None]:
    """Sign one uploaded object; print one line; return the signed object's location."""
    bucket, key, version = location
    signed = signer.sign(bucket, key, version, prefix=prefix)
    state = "already signed" if signed.reused else "signed"
    say(
        f"{state} s3://{bucket}/{key} with {signer.profile.name}/{signer.profile.version} "
        f"(job {signed.job_id}) -> s3://{signed.bucket}/{signed.key}"
    )
    return signed.bucket, signed.key, None

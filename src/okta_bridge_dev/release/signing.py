"""Code signing for ``make deploy``: AWS Signer signs the uploaded zips, the stack takes the
signed objects.

With ``CodeSigningProfileVersionArn`` set, the template gives every function a code signing
configuration in Enforce mode, so Lambda refuses unsigned code (and unsigned layers). The
profile is checked before anything is uploaded (it exists, is Active, signs for Lambda, is the
version the ARN names, in the stack's region); each uploaded object version is then signed by a
Signer job into ``<prefix>/signed/`` of the same (versioned) bucket, and the template points at
the signed object's version (the one Signer wrote, so a later write over that key changes
nothing). A signed object is remembered per source object version and profile version
(``<prefix>/signed/index/``), so an unchanged build is not signed again and the stack's code
location does not change. Whoever may write to the bucket may write that index too, so a record
is only a hint: the signing job it names must have signed exactly that source version with this
profile version (Signer says so, not the record), and its output must still be the only version
of its key; otherwise the zip is signed again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from okta_bridge_dev.release.aws import error_code
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
CLOCK_SKEW = timedelta(seconds=1)
"""How much later than its job's completion S3 may date a signed object that Signer wrote."""
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
    version: str | None = None
    """The object version Signer wrote: the stack's code is pinned to it."""
    reused: bool = False
    warning: str = ""
    """Why an index record was not trusted (a record or a signed object written over)."""


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
            code = error_code(exc)
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
        found_arn = str(found.get("profileVersionArn") or "")
        if found_arn and found_arn != profile.arn:
            # Same name and version, another partition or account: the code signing config
            # would name a profile that did not sign the code.
            raise UsageError(
                f"{refused}: {PARAMETER} is {profile.arn} but the profile Signer signs with is "
                f"{found_arn}; set {PARAMETER}={found_arn}"
            )

    def sign(self, bucket: str, key: str, version: str | None, *, prefix: str) -> SignedObject:
        """The signed copy of ``s3://bucket/key`` at ``version``: reused, or signed now."""
        if not version:
            raise DeployError(
                f"s3://{bucket}/{key} has no version id: Signer signs object versions only "
                "(is the bucket versioned?)"
            )
        index_key = f"{prefix}/signed/index/{self._index_name(bucket, key, version)}.json"
        known, warning = self._known(bucket, key, version, index_key)
        if known is not None:
            return known
        job_id = self._start(bucket, key, version, prefix=f"{prefix}/signed/")
        described = self._wait(job_id, f"s3://{bucket}/{key}")
        signed = described.get("signedObject", {}).get("s3", {})
        signed_bucket, signed_key = str(signed.get("bucketName") or bucket), str(signed["key"])
        signed_version = self._only_version(signed_bucket, signed_key)
        if signed_version is None:
            raise DeployError(
                f"not deployed: s3://{signed_bucket}/{signed_key}, the output of signing job "
                f"{job_id}, was written over (or deleted) while the job ran: someone else writes "
                f"to s3://{signed_bucket}; find out who before deploying again"
            )
        result = SignedObject(
            bucket=signed_bucket,
            key=signed_key,
            job_id=job_id,
            version=signed_version,
            warning=warning,
        )
        record = {"source": {"bucket": bucket, "key": key, "version": version}}
        record["signed"] = {
            "bucket": result.bucket,
            "key": result.key,
            "version": signed_version,
            "jobId": job_id,
        }
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

    def _known(
        self, bucket: str, key: str, version: str, index_key: str
    ) -> tuple[SignedObject | None, str]:
        """The signed object an earlier deploy recorded, if Signer and S3 still vouch for it.

        The record only names a signing job: the job (as Signer describes it) must have signed
        ``bucket/key`` at ``version`` with this profile version, and its output must be the only
        version of its key. (None, why) when the record is missing, unreadable or not vouched
        for: the zip is then signed again.
        """
        try:
            body = self.s3.get_object(
                Bucket=bucket, Key=index_key, ExpectedBucketOwner=self.account
            )["Body"].read()
            job_id = str(json.loads(body)["signed"]["jobId"])
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None, ""
            raise
        except (KeyError, TypeError, ValueError):
            return None, ""  # an unreadable record: sign again
        try:
            job = self.client.describe_signing_job(jobId=job_id)
        except ClientError as exc:
            if error_code(exc) not in ("ResourceNotFoundException", "NotFoundException"):
                raise
            return None, ""  # Signer keeps jobs for 90 days: sign again
        source = job.get("source", {}).get("s3", {})
        signed = job.get("signedObject", {}).get("s3", {})
        vouched = (
            job.get("status") == "Succeeded"
            and (source.get("bucketName"), source.get("key"), source.get("version"))
            == (bucket, key, version)
            and job.get("profileName") == self.profile.name
            and job.get("profileVersion") == self.profile.version
            and bool(signed.get("key"))
        )
        if not vouched:
            return None, (
                f"the record {index_key} names signing job {job_id}, which did not sign "
                f"s3://{bucket}/{key} (version {version}) with {self.profile.name}/"
                f"{self.profile.version}: someone wrote over it; signing again"
            )
        signed_bucket = str(signed.get("bucketName") or bucket)
        signed_key = str(signed["key"])
        completed = job.get("completedAt")
        if not isinstance(completed, datetime):
            return None, ""  # Signer always says when a job completed: sign again
        try:
            signed_version = self._only_version(signed_bucket, signed_key, by=completed)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return None, ""
            raise
        if signed_version is None:
            return None, (
                f"s3://{signed_bucket}/{signed_key}, the output of signing job {job_id}, was "
                "written over, deleted or replaced after the job: signing again"
            )
        return (
            SignedObject(
                bucket=signed_bucket,
                key=signed_key,
                job_id=job_id,
                version=signed_version,
                reused=True,
            ),
            "",
        )

    def _only_version(self, bucket: str, key: str, *, by: datetime | None = None) -> str | None:
        """The version id of ``key`` when it has exactly one version and no delete marker (and,
        with ``by``, was written no later than that: a signing job's completion)."""
        listed = self.s3.list_object_versions(
            Bucket=bucket, Prefix=key, ExpectedBucketOwner=self.account
        )
        versions = [v for v in listed.get("Versions", []) if v.get("Key") == key]
        markers = [m for m in listed.get("DeleteMarkers", []) if m.get("Key") == key]
        if len(versions) != 1 or markers or listed.get("IsTruncated"):
            return None
        written = versions[0].get("LastModified")
        if by is not None and (not isinstance(written, datetime) or written > by + CLOCK_SKEW):
            return None  # the job's output deleted, and another object put in its place
        return str(versions[0]["VersionId"])

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
    if signed.warning:
        say(f"warning: {signed.warning}")
    state = "already signed" if signed.reused else "signed"
    say(
        f"{state} s3://{bucket}/{key} with {signer.profile.name}/{signer.profile.version} "
        f"(job {signed.job_id}) -> s3://{signed.bucket}/{signed.key}"
    )
    return signed.bucket, signed.key, signed.version

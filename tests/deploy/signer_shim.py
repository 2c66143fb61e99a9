"""AWS Signer's signing jobs, which moto 5.2.5 lacks, added to moto's server for the tests only.

moto has signing profiles (put, get, cancel) but no ``StartSigningJob`` or
``DescribeSigningJob``. ``install`` adds both to moto's Signer, served in-process over real
HTTP/TLS like every other service the deploy tests use:

- ``StartSigningJob`` "signs" by copying the source object version, as it is, to the
  destination bucket under ``<prefix><job id>.zip`` (moto's S3 backend, in the same process), and
  records the job (source, destination, profile, status). A source version that does not exist
  fails the job, as Signer does; ``Jobs.fail_next`` makes the next jobs fail with a reason.
- ``DescribeSigningJob`` answers ``InProgress`` on a job's first call and its final state
  afterwards, so the caller's waiting loop really runs; an unknown job id is
  ``ResourceNotFoundException``.
- ``GetSigningProfile`` of a missing profile is ``ResourceNotFoundException`` (moto answers a
  KeyError, an HTTP 500 that botocore would retry).

Nothing checks a signature: Lambda in moto does not verify code signing either. The tests assert
that the stack's code points at the signed objects and that the right jobs ran.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from moto.core.exceptions import JsonRESTError
from moto.s3.models import s3_backends
from moto.signer import urls
from moto.signer.models import SignerBackend, SigningProfile
from moto.signer.responses import SignerResponse

__all__ = ["Job", "Jobs", "install"]


@dataclass
class Job:
    """One signing job as the fake Signer recorded it."""

    job_id: str
    account: str
    profile_name: str
    profile_version: str
    platform_id: str
    source: dict[str, str]
    destination: dict[str, str]
    status: str
    reason: str = ""
    signed_key: str = ""
    completed_at: float = 0.0
    """When the job completed (epoch seconds), as Signer's completedAt says."""
    described: int = 0

    def to_dict(self) -> dict[str, Any]:
        shown = "InProgress" if self.described == 0 else self.status
        self.described += 1
        answer: dict[str, Any] = {
            "jobId": self.job_id,
            "jobOwner": self.account,
            "source": {"s3": self.source},
            "profileName": self.profile_name,
            "profileVersion": self.profile_version,
            "platformId": self.platform_id,
            "status": shown,
        }
        if shown == "Failed":
            answer["statusReason"] = self.reason
        if shown in ("Succeeded", "Failed"):
            answer["completedAt"] = self.completed_at
        if shown == "Succeeded":
            answer["signedObject"] = {
                "s3": {"bucketName": self.destination["bucketName"], "key": self.signed_key}
            }
        return answer


class Jobs:
    """Every job started on the server (all accounts), and the failures to inject."""

    started: ClassVar[list[Job]] = []
    fail_next: ClassVar[list[str]] = []
    by_id: ClassVar[dict[str, Job]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.started.clear()
        cls.fail_next.clear()
        cls.by_id.clear()


class _NotFound(JsonRESTError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


def _profile(backend: SignerBackend, name: str) -> SigningProfile:
    profile = backend.signing_profiles.get(name)
    if profile is None:
        raise _NotFound(f"signing profile {name} not found")
    return profile


def get_signing_profile(self: SignerBackend, profile_name: str) -> SigningProfile:
    """moto's, with AWS's error for a missing profile."""
    return _profile(self, profile_name)


def start_signing_job(self: SignerResponse) -> str:
    params = json.loads(self.body)
    profile = _profile(self.signer_backend, params["profileName"])
    source = dict(params["source"]["s3"])
    destination = dict(params["destination"]["s3"])
    job = Job(
        job_id=str(uuid.uuid4()),
        account=self.current_account,
        profile_name=profile.name,
        profile_version=profile.profile_version,
        platform_id=profile.platform_id,
        source=source,
        destination=destination,
        status="Succeeded",
    )
    s3 = s3_backends[self.current_account]["aws"]
    original = s3.get_object(source["bucketName"], source["key"], version_id=source.get("version"))
    if Jobs.fail_next:
        job.status, job.reason = "Failed", Jobs.fail_next.pop(0)
    elif profile.status != "Active":
        job.status, job.reason = "Failed", f"Signing profile is {profile.status}"
    elif original is None:
        job.status, job.reason = "Failed", "Source object version not found"
    else:
        job.signed_key = f"{destination.get('prefix', '')}{job.job_id}.zip"
        s3.put_object(destination["bucketName"], job.signed_key, original.value)
    job.completed_at = time.time()
    Jobs.started.append(job)
    Jobs.by_id[job.job_id] = job
    return json.dumps({"jobId": job.job_id, "jobOwner": job.account})


def describe_signing_job(self: SignerResponse) -> str:
    job_id = self.path.rstrip("/").split("/")[-1]
    job = Jobs.by_id.get(job_id)
    if job is None:
        raise _NotFound(f"signing job {job_id} not found")
    return json.dumps(job.to_dict())


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route and answer the two operations on moto's Signer for this test."""
    Jobs.reset()
    monkeypatch.setitem(urls.url_paths, "{0}/signing-jobs$", SignerResponse.dispatch)
    monkeypatch.setitem(
        urls.url_paths, "{0}/signing-jobs/(?P<job_id>[^/]+)$", SignerResponse.dispatch
    )
    monkeypatch.setattr(SignerResponse, "start_signing_job", start_signing_job, raising=False)
    monkeypatch.setattr(SignerResponse, "describe_signing_job", describe_signing_job, raising=False)
    monkeypatch.setattr(SignerBackend, "get_signing_profile", get_signing_profile)

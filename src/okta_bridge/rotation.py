"""The rotation function: Secrets Manager's four steps for the Okta credentials secret.

Secrets Manager invokes ``lambda_handler`` once per step with the same ``ClientRequestToken`` (the
new version's id) and retries the whole rotation when a step fails, so every step first looks at
what is already done and does only the rest:

- ``createSecret``: remove what an earlier failed run left in Okta, create the new credential in
  Okta *inactive*, and store it as the AWSPENDING version (with Okta's id for it);
- ``setSecret``: activate it in Okta (or change the password), so old and new both work;
- ``testSecret``: get a token with the pending credential, exactly as the bridge would;
- ``finishSecret``: promote it to AWSCURRENT, then deactivate and delete the old credential in Okta
  and confirm that Okta refuses it.

Warm bridges keep their cached token; when Okta refuses the old credential they re-read the secret
(``SecretStore.reload``). The strategies differ only in what "a credential" is: a client secret,
a key pair, or a service account's password.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from okta_bridge import logs
from okta_bridge.config import Settings
from okta_bridge.credentials import Credentials, parse_secret
from okta_bridge.errors import (
    BridgeError,
    ConfigError,
    InternalError,
    NetworkError,
    RotationError,
    SecretError,
    TlsError,
    TokenError,
)
from okta_bridge.keys import new_key_like, public_members, same_public_key
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.okta_admin import (
    JWKS,
    SECRETS,
    OktaAdmin,
    OktaApiError,
    OktaKey,
    OktaSecret,
    OktaWriteUncertain,
    parse_admin_secret,
)
from okta_bridge.secrets import CURRENT, PENDING, make_client, translate_aws_error
from okta_bridge.tokens import TokenEndpoint
from okta_bridge.transport import Deadline, HttpClient

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

ADMIN_SECRET_ID = "BRIDGE_ADMIN_SECRET_ID"  # noqa: S105 - a variable name
PREVIOUS = "AWSPREVIOUS"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
PASSWORD_LENGTH = 32
_PASSWORD_SYMBOLS = "!#%*+-.=?@^_~"  # noqa: S105 - an alphabet
# Okta's answers when the credentials themselves are refused: the old one is dead.
_REFUSED = frozenset({"TOKEN_REJECTED", "TOKEN_GRANT_INVALID"})

log = get_logger("rotation")


@dataclass(frozen=True)
class RotationRequest:
    """One step of one rotation, as Secrets Manager sends it."""

    step: str
    secret_id: str
    token: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: Any) -> RotationRequest:
        """Validate the event; a bad one is refused before any call."""
        if not isinstance(event, Mapping):
            raise RotationError("ROTATION_STEP_INVALID", "The event must be a JSON object.")
        step = event.get("Step")
        if step not in STEPS:
            raise RotationError("ROTATION_STEP_INVALID", f"Step must be one of {', '.join(STEPS)}.")
        fields: dict[str, str] = {}
        for key in ("SecretId", "ClientRequestToken"):
            value = event.get(key)
            if not isinstance(value, str) or not value:
                raise RotationError("ROTATION_STEP_INVALID", f"The event lacks '{key}'.")
            fields[key] = value
        rotation_token = event.get("RotationToken")
        return cls(
            step=step,
            secret_id=fields["SecretId"],
            token=fields["ClientRequestToken"],
            rotation_token=rotation_token if isinstance(rotation_token, str) else None,
        )


@dataclass(frozen=True)
class Description:
    """What ``DescribeSecret`` says about the secret's rotation and versions."""

    arn: str
    name: str
    rotation_enabled: bool
    stages: Mapping[str, tuple[str, ...]]

    def version_with(self, stage: str) -> str | None:
        """The version carrying ``stage``, if any."""
        return next((v for v, labels in self.stages.items() if stage in labels), None)


class SecretVersions:
    """The Secrets Manager calls of a rotation, with AWS errors translated."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def describe(self) -> Description:
        """Rotation state and the staging labels of every version."""
        answer = self._aws(lambda: self._client.describe_secret(SecretId=self._secret_id))
        return Description(
            arn=answer.get("ARN", ""),
            name=answer.get("Name", ""),
            rotation_enabled=bool(answer.get("RotationEnabled")),
            stages={k: tuple(v) for k, v in answer.get("VersionIdsToStages", {}).items()},
        )

    def text(self, *, version_id: str | None = None, stage: str | None = None) -> str | None:
        """The secret string of one version, or None if it has no value (yet)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        arguments: dict[str, str] = {"SecretId": self._secret_id}
        if version_id is not None:
            arguments["VersionId"] = version_id
        if stage is not None:
            arguments["VersionStage"] = stage
        try:
            answer = self._client.get_secret_value(**arguments)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise translate_aws_error(exc, self._secret_id) from exc
        except Exception as exc:
            raise translate_aws_error(exc, self._secret_id) from exc
        return answer.get("SecretString")

    def put_pending(self, token: str, text: str, rotation_token: str | None) -> None:
        """Store the new value as the AWSPENDING version ``token``."""
        arguments: dict[str, Any] = {
            "SecretId": self._secret_id,
            "ClientRequestToken": token,
            "SecretString": text,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            arguments["RotationToken"] = rotation_token
        self._aws(lambda: self._client.put_secret_value(**arguments))

    def promote(self, token: str, current: str) -> None:
        """Move AWSCURRENT to ``token``; Secrets Manager labels ``current`` AWSPREVIOUS."""
        self._aws(
            lambda: self._client.update_secret_version_stage(
                SecretId=self._secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=token,
                RemoveFromVersionId=current,
            )
        )

    def drop_pending(self, token: str) -> None:
        """Take AWSPENDING off ``token``, so no later rotation mistakes it for work in progress."""
        self._aws(
            lambda: self._client.update_secret_version_stage(
                SecretId=self._secret_id, VersionStage=PENDING, RemoveFromVersionId=token
            )
        )

    def _aws(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            raise translate_aws_error(exc, self._secret_id) from exc


class Strategy(Protocol):
    """How one kind of credential is created, activated and retired in Okta."""

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        """The secret keys that change; ``ours`` are older versions this function made."""
        ...

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        """Make Okta accept ``pending`` (``current`` keeps working unless it cannot)."""
        ...

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Make Okta forget ``old``."""
        ...


Probe = Callable[[Credentials, Deadline], bool]


class _AppCredentialStrategy:
    """What client secrets and keys share: activating the pending one, removing an old one."""

    kind = SECRETS
    noun = "client secret"

    def __init__(self, admin: OktaAdmin) -> None:
        self._admin = admin

    def _activate(
        self, app: str, target: OktaSecret | OktaKey | None, name: str | None, deadline: Deadline
    ) -> None:
        if target is None:
            raise RotationError(
                "ROTATION_OKTA_ERROR",
                f"The pending {self.noun} {name} is no longer on app {app}; start a new rotation.",
            )
        if target.status != ACTIVE:
            self._admin.set_status(app, self.kind, target.id, deadline, active=True)
            log.info(
                "credential activated in Okta",
                extra={"app_id": app, "kind": self.kind, "id": target.id},
            )

    def _remove(self, app: str, item: OktaSecret | OktaKey, deadline: Deadline) -> None:
        if item.status == ACTIVE:
            self._admin.set_status(app, self.kind, item.id, deadline, active=False)
        self._admin.delete(app, self.kind, item.id, deadline)
        log.info(
            "credential deleted in Okta", extra={"app_id": app, "kind": self.kind, "id": item.id}
        )


class ClientSecretStrategy(_AppCredentialStrategy):
    """An app's client secret. Okta keeps at most two, so the leftovers go first."""

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        app = current.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        mine = {c.okta_secret_id for c in ours if c.okta_secret_id}
        holder = _current_secret(current, listed, mine)
        for other in listed:
            if other.id == holder.id:
                continue
            if other.status != ACTIVE or other.id in mine:
                self._remove(app, other, deadline)
            else:
                raise RotationError(
                    "ROTATION_SECRET_LIMIT",
                    f"App {app} has an active client secret {other.id} besides {holder.id}, which "
                    "the secret holds; Okta allows two. Delete the unused one in Okta.",
                )
        created, value = self._admin.create_secret(app, deadline, status=INACTIVE)
        REDACTOR.pin([value])
        log.info("client secret created in Okta", extra={"app_id": app, "secret_id": created.id})
        return {"client_secret": value, "okta_secret_id": created.id}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        app = pending.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        target = next((s for s in listed if s.id == pending.okta_secret_id), None)
        self._activate(app, target, pending.okta_secret_id, deadline)

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Remove every secret of the app but the one ``new`` holds, which must be identified
        (by its ``okta_secret_id``) and active first: never the credential in use."""
        app = new.okta_app_id
        listed = self._admin.list_secrets(app, deadline)
        kept = next((s for s in listed if s.id == new.okta_secret_id), None)
        if kept is None or kept.status != ACTIVE:
            raise RotationError(
                "ROTATION_CREDENTIAL_UNIDENTIFIED",
                f"The new version's client secret ({new.okta_secret_id or 'no okta_secret_id'}) "
                f"is not an active secret of app {app}; nothing was removed.",
            )
        others = [s for s in listed if s.id != kept.id]
        if old.okta_secret_id is not None:
            others = [s for s in others if s.id == old.okta_secret_id]
        for secret in others:
            self._remove(app, secret, deadline)


def _current_secret(current: Credentials, listed: list[OktaSecret], mine: set[str]) -> OktaSecret:
    """The Okta secret the current version holds: by its id, else the only active one."""
    app = current.okta_app_id
    if current.okta_secret_id is not None:
        match = next((s for s in listed if s.id == current.okta_secret_id), None)
        if match is not None and match.status == ACTIVE:
            return match
    active = [s for s in listed if s.status == ACTIVE and s.id not in mine]
    if len(active) == 1:
        return active[0]
    if not active:
        raise RotationError(
            "ROTATION_OKTA_ERROR", f"App {app} has no active client secret the secret could hold."
        )
    raise RotationError(
        "ROTATION_SECRET_LIMIT",
        f"App {app} has two active client secrets ({', '.join(s.id for s in active)}) and the "
        "secret does not say which one it holds; add okta_secret_id to the secret or delete the "
        "unused one in Okta.",
    )


class KeyStrategy(_AppCredentialStrategy):
    """An app's private_key_jwt key pair, matched by its public half rather than a kid."""

    kind = JWKS
    noun = "key"

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        app = current.okta_app_id
        listed = self._admin.list_keys(app, deadline)
        holder = _key_of(current, listed)
        if holder is None:
            raise RotationError(
                "ROTATION_OKTA_ERROR",
                f"The current private key's public key is not registered on app {app}.",
            )
        mine = [k for k in (_key_of(c, listed) for c in ours) if k is not None]
        for other in listed:
            if other.id == holder.id:
                continue
            if other.status != ACTIVE or other in mine:
                self._remove(app, other, deadline)
        pair = new_key_like(current.private_key)
        while pair.kid in {k.kid for k in listed}:
            pair = new_key_like(current.private_key)
        REDACTOR.pin([pair.private_pem])
        added = self._admin.add_key(app, pair.jwk, deadline, status=INACTIVE)
        log.info("key registered in Okta", extra={"app_id": app, "kid": pair.kid, "id": added.id})
        return {"private_key": pair.private_pem, "key_id": pair.kid}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        app = pending.okta_app_id
        target = _key_of(pending, self._admin.list_keys(app, deadline))
        self._activate(app, target, pending.key_id, deadline)

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Remove the old key, once the new one is found active on the app."""
        app = new.okta_app_id
        listed = self._admin.list_keys(app, deadline)
        stale, fresh = _key_of(old, listed), _key_of(new, listed)
        if fresh is None or fresh.status != ACTIVE:
            raise RotationError(
                "ROTATION_CREDENTIAL_UNIDENTIFIED",
                f"The new version's key ({new.key_id}) is not an active key of app {app}; "
                "nothing was removed.",
            )
        if stale is not None and stale != fresh:
            self._remove(app, stale, deadline)


def _key_of(credentials: Credentials, listed: Iterable[OktaKey]) -> OktaKey | None:
    if not credentials.private_key:
        return None
    members = public_members(credentials.private_key)
    return next((k for k in listed if same_public_key(k.jwk, members)), None)


class PasswordStrategy:
    """A dedicated service account's password, changed through Okta where Okta masters it."""

    def __init__(self, admin: OktaAdmin, probe: Probe) -> None:
        self._admin = admin
        self._probe = probe

    def create(
        self, current: Credentials, ours: list[Credentials], deadline: Deadline
    ) -> dict[str, str]:
        user = self._admin.get_user(current.username or "", deadline)
        if user.provider_type != "OKTA":
            raise RotationError(
                "ROTATION_PASSWORD_DIRECTORY_MASTERED",
                f"{user.login}'s password is mastered by {user.provider_type} "
                f"{user.provider_name}".rstrip()
                + "; Okta cannot change it. Change it in the directory, then store it.",
            )
        password = generate_password()
        REDACTOR.pin([password])
        return {"password": password}

    def activate(self, current: Credentials, pending: Credentials, deadline: Deadline) -> None:
        user = self._admin.get_user(current.username or "", deadline)
        try:
            self._admin.change_password(
                user.id, current.password or "", pending.password or "", deadline
            )
        except OktaWriteUncertain:
            # The answer was lost: the new password works if the change went through.
            if self._probe(pending, deadline):
                log.info("password change confirmed by a token", extra={"user_id": user.id})
                return
            raise
        except OktaApiError as exc:
            # E0000014 after a change that went through (a retried step): Okta holds the new one.
            if exc.okta_code == "E0000014" and self._probe(pending, deadline):
                log.info("password already changed", extra={"user_id": user.id})
                return
            raise
        log.info("password changed in Okta", extra={"user_id": user.id})

    def retire(self, old: Credentials, new: Credentials, deadline: Deadline) -> None:
        """Nothing: a user has one password, and the old one died with the change."""


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """Random, with every character class Okta's password policies may require."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _PASSWORD_SYMBOLS)
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in group for ch in candidate) for group in classes):
            return candidate


class Rotator:
    """Runs one step for the configured credentials secret."""

    def __init__(
        self,
        settings: Settings,
        versions: SecretVersions,
        endpoint: TokenEndpoint,
        admin: Callable[[], OktaAdmin],
    ) -> None:
        self._settings = settings
        self._versions = versions
        self._endpoint = endpoint
        self._admin_factory = admin
        self._admin: OktaAdmin | None = None

    def run(self, request: RotationRequest, deadline: Deadline) -> None:
        """AWS's guards, then the step; a ``BridgeError`` makes Secrets Manager retry."""
        description = self._versions.describe()  # of the configured secret
        if request.secret_id not in (description.arn, description.name):
            raise RotationError(
                "ROTATION_SECRET_MISMATCH",
                f"Invoked for {request.secret_id}, but this function rotates {description.arn}.",
            )
        if not description.rotation_enabled:
            raise RotationError(
                "ROTATION_NOT_ENABLED", f"Rotation is not enabled on {description.name}."
            )
        labels = description.stages.get(request.token)
        if labels is None:
            raise RotationError(
                "ROTATION_VERSION_UNKNOWN",
                f"Version {request.token} is not a version of {description.name}.",
            )
        context = {"step": request.step, "version": request.token}
        # finishSecret takes AWSPENDING off last: a current version still pending is a finish
        # interrupted after the promotion, whose cleanup is still owed. Otherwise a step on the
        # current version is a replay (Secrets Manager's retries, or anyone who may invoke the
        # function): nothing to do, and above all nothing to retire.
        if CURRENT in labels and not (request.step == "finishSecret" and PENDING in labels):
            log.info("version is already AWSCURRENT; nothing to do", extra=context)
            return
        if CURRENT not in labels and PENDING not in labels:
            raise RotationError(
                "ROTATION_VERSION_NOT_PENDING",
                f"Version {request.token} of {description.name} is not staged AWSPENDING.",
            )
        log.info("rotation step started", extra=context)
        step = {
            "createSecret": self._create,
            "setSecret": self._set,
            "testSecret": self._test,
            "finishSecret": self._finish,
        }[request.step]
        step(request, description, deadline)
        log.info("rotation step done", extra=context)

    # -- steps -----------------------------------------------------------------------------

    def _create(
        self, request: RotationRequest, description: Description, deadline: Deadline
    ) -> None:
        if self._versions.text(version_id=request.token, stage=PENDING) is not None:
            log.info("the pending version is already stored", extra={"version": request.token})
            return
        text = self._require(self._versions.text(stage=CURRENT), CURRENT)
        current = self._parse(text)
        ours = self._older_versions(description, exclude={request.token})
        changes = self._strategy(current).create(current, ours, deadline)
        data = json.loads(text)
        data.update(changes)
        pending_text = json.dumps(data)
        self._parse(pending_text)
        self._versions.put_pending(request.token, pending_text, request.rotation_token)
        log.info("pending version stored", extra={"version": request.token})

    def _set(self, request: RotationRequest, description: Description, deadline: Deadline) -> None:
        current = self._parse(self._require(self._versions.text(stage=CURRENT), CURRENT))
        pending = self._pending(request)
        self._strategy(pending).activate(current, pending, deadline)

    def _test(self, request: RotationRequest, description: Description, deadline: Deadline) -> None:
        text = self._versions.text(version_id=request.token, stage=PENDING)
        if text is None:
            # Secrets Manager checks the configuration this way when a schedule is created
            # without rotating (RotateImmediatelyOnUpdate false), before any createSecret: an
            # empty pending version. A real rotation always stored a value in createSecret.
            log.info("no pending value to test; the configuration check passes")
            return
        self._prove(self._parse(text), request.token, deadline)

    def _prove(self, pending: Credentials, version: str, deadline: Deadline) -> None:
        """The new credential gets a token, exactly as the bridge would ask; else nothing more
        happens to the secret."""
        try:
            self._endpoint.request(pending, deadline)
        except TokenError as exc:
            changed = (
                "If setSecret ran, Okta holds the new password (AWSPENDING, which the bridge "
                "falls back to): retry this rotation, not a new one"
                if pending.grant_type == "password"
                else "AWSCURRENT is unchanged and still works"
            )
            raise RotationError(
                "ROTATION_TEST_FAILED",
                f"The new credential got no token ({exc.code}: {exc.message}); it was not "
                f"promoted. {changed}.",
            ) from None
        log.info("the new credential gets a token", extra={"version": version})

    def _finish(
        self, request: RotationRequest, description: Description, deadline: Deadline
    ) -> None:
        """Prove the new credential, promote it, retire the old one, confirm Okta refuses it,
        then drop AWSPENDING.

        The new credential must get a token first, whatever the earlier steps did or did not do
        (an invoker may send finishSecret alone): a credential Okta refuses is never promoted,
        and the old one is never retired in its favour. AWSPENDING leaves the new version last,
        so "AWSCURRENT and no AWSPENDING" means the whole step is done (make rotate-now waits for
        exactly that). A retry after a failure past the promotion finds the version AWSCURRENT
        and still AWSPENDING, and retires AWSPREVIOUS's credential.
        """
        current_version = description.version_with(CURRENT)
        if current_version is None:
            raise RotationError(
                "ROTATION_VERSION_UNKNOWN", f"{description.name} has no AWSCURRENT version."
            )
        new_text = self._versions.text(version_id=request.token)
        if new_text is None:
            raise RotationError(
                "ROTATION_TEST_FAILED",
                f"Version {request.token} has no value: createSecret never stored one; "
                "nothing was promoted.",
            )
        new = self._parse(new_text)
        self._prove(new, request.token, deadline)
        if current_version != request.token:
            self._versions.promote(request.token, current_version)
            old_version: str | None = current_version
            log.info("AWSCURRENT moved", extra={"version": request.token})
        else:
            old_version = description.version_with(PREVIOUS)
        old_text = self._versions.text(version_id=old_version) if old_version else None
        if old_text is not None and old_version != request.token:
            old = self._parse(old_text)
            self._strategy(new).retire(old, new, deadline)
            self._confirm_refused(old, deadline)
        if PENDING in description.stages.get(request.token, ()):
            self._versions.drop_pending(request.token)

    # -- helpers ---------------------------------------------------------------------------

    def _confirm_refused(self, old: Credentials, deadline: Deadline) -> None:
        """Okta must now refuse the old credential; anything else is reported, not guessed."""
        try:
            self._endpoint.request(old, deadline)
        except TokenError as exc:
            if exc.code in _REFUSED:
                log.info("Okta refuses the old credential", extra={"code": exc.code})
                return
            log.warning("could not confirm the old credential is refused", extra={"code": exc.code})
            return
        except (NetworkError, TlsError) as exc:
            log.warning("could not confirm the old credential is refused", extra={"code": exc.code})
            return
        raise RotationError(
            "ROTATION_OLD_CREDENTIAL_ACCEPTED",
            f"Okta still issues tokens for the old credential of {old.client_id}.",
        )

    def _probe(self, credentials: Credentials, deadline: Deadline) -> bool:
        try:
            self._endpoint.request(credentials, deadline)
        except TokenError:
            return False
        return True

    def _strategy(self, credentials: Credentials) -> Strategy:
        if self._admin is None:
            self._admin = self._admin_factory()
        if credentials.grant_type == "password":
            return PasswordStrategy(self._admin, self._probe)
        if credentials.auth_method == "private_key_jwt":
            return KeyStrategy(self._admin)
        return ClientSecretStrategy(self._admin)

    def _pending(self, request: RotationRequest) -> Credentials:
        text = self._versions.text(version_id=request.token, stage=PENDING)
        return self._parse(self._require(text, request.token))

    def _older_versions(self, description: Description, *, exclude: set[str]) -> list[Credentials]:
        """Versions this function made earlier (AWSPREVIOUS, a stale AWSPENDING), parsed."""
        found = []
        for version, labels in description.stages.items():
            if version in exclude or CURRENT in labels:
                continue
            if PREVIOUS not in labels and PENDING not in labels:
                continue
            text = self._versions.text(version_id=version)
            if text is None:
                continue
            try:
                found.append(self._parse(text))
            except SecretError:
                log.info("an older version is not usable JSON; ignored", extra={"version": version})
        return found

    def _parse(self, text: str) -> Credentials:
        credentials = parse_secret(text, self._settings)
        REDACTOR.pin(credentials.sensitive_values())
        return credentials

    @staticmethod
    def _require(text: str | None, what: str) -> str:
        if text is None:
            raise SecretError(
                "SECRET_INVALID",
                f"The secret's {what} version has no value; "
                "store the credentials first (make secret).",
            )
        return text


def build_rotator(
    settings: Settings,
    admin_secret_id: str,
    *,
    client: SecretsManagerClient | None = None,
    http: HttpClient | None = None,
) -> Rotator:
    """Wire a rotator from configuration; ``client``/``http`` for tests and the local stack."""
    sm = client or make_client(settings)
    http = http or HttpClient(settings)
    endpoint = TokenEndpoint(
        http, on_token=lambda value: REDACTOR.register([value]), dpop_mode=settings.dpop
    )

    def admin() -> OktaAdmin:
        # GetSecretValue is all the role may do on the admin secret, so "empty" and "missing"
        # (both ResourceNotFoundException) are not told apart.
        text = SecretVersions(sm, admin_secret_id).text(stage=CURRENT)
        if text is None:
            raise RotationError(
                "ROTATION_ADMIN_SECRET_INVALID",
                f"The admin secret {admin_secret_id} has no value or does not exist "
                "(make secret ADMIN=1).",
            )
        credentials = parse_admin_secret(text)
        REDACTOR.pin(credentials.sensitive_values())
        return OktaAdmin(credentials, http, endpoint)

    return Rotator(settings, SecretVersions(sm, settings.secret_id), endpoint, admin)


def admin_secret_id(env: Mapping[str, str]) -> str:
    """The admin secret's name or ARN from the environment."""
    value = env.get(ADMIN_SECRET_ID, "").strip()
    if not value:
        raise ConfigError(
            ADMIN_SECRET_ID, "is required: the secret holding the Okta admin app's credentials"
        )
    return value


def lambda_handler(event: Any, context: Any) -> None:
    """Run one rotation step; raise on failure so that Secrets Manager retries the rotation."""
    request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    with logs.request_scope(request_id):
        step = event.get("Step") if isinstance(event, Mapping) else None
        try:
            settings = Settings.from_env()
            logs.configure(settings.log_level)
            request = RotationRequest.parse(event)
            rotator = build_rotator(settings, admin_secret_id(os.environ))
            rotator.run(request, Deadline.from_context(context, settings))
        except BridgeError as exc:
            log.error(  # noqa: TRY400 - the message is the report; no traceback in the log
                "rotation step failed",
                extra={"step": step, "code": exc.code, "stage": exc.stage, "error": exc.message},
            )
            raise
        except Exception:
            log.exception("unexpected error in rotation", extra={"code": "INTERNAL_ERROR"})
            raise InternalError() from None

"""The rotation function: Secrets Manager's four steps for the Okta credentials secret.

Secrets Manager invokes ``lambda_handler`` once per step with the same ``ClientRequestToken`` (the
new version's id) and retries the whole rotation when a step fails, so every step first looks at
what is already done and does only the rest:

- ``createSecret``: remove what an earlier failed run left in Okta, create the new credential in
  Okta *inactive*, and store it as the AWSPENDING version (with Okta's id for it);
- ``setSecret``: activate it in Okta (or change the password), so old and new both work;
- ``testSecret``: get a token with the pending credential, exactly as the bridge would;
- ``finishSecret``: promote it to AWSCURRENT, then deactivate and delete the old credential in Okta,
  confirm that Okta refuses it, and only then destroy what is left of it (a KMS key).

Warm bridges keep their cached token; when Okta refuses the old credential they re-read the secret
(``SecretStore.reload``). The strategies differ only in what "a credential" is: a client secret,
a key pair, a KMS key, or a service account's password.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from okta_bridge.auth.endpoint import TokenEndpoint
from okta_bridge.config import Settings
from okta_bridge.errors import (
    NetworkError,
    RotationError,
    SecretError,
    SigningError,
    TlsError,
    TokenError,
)
from okta_bridge.logs import REDACTOR, get_logger
from okta_bridge.rotation.kms_keys import KmsKeys
from okta_bridge.rotation.kms_strategy import KmsKeyStrategy
from okta_bridge.rotation.okta_admin import (
    OktaAdmin,
)
from okta_bridge.rotation.strategies import (
    ClientSecretStrategy,
    KeyStrategy,
    PasswordStrategy,
    Strategy,
)
from okta_bridge.rotation.versions import PREVIOUS, Description, RotationRequest, SecretVersions
from okta_bridge.secret.credentials import Credentials, parse_secret
from okta_bridge.secret.store import CURRENT, PENDING
from okta_bridge.transport.deadline import Deadline

# Okta's answers when the credentials themselves are refused: the old one is dead.
_REFUSED = frozenset({"TOKEN_REJECTED", "TOKEN_GRANT_INVALID"})

log = get_logger("rotation")


class Rotator:
    """Runs one step for the configured credentials secret."""

    def __init__(
        self,
        settings: Settings,
        versions: SecretVersions,
        endpoint: TokenEndpoint,
        admin: Callable[[], OktaAdmin],
        kms: Callable[[], KmsKeys] | None = None,
    ) -> None:
        self._settings = settings
        self._versions = versions
        self._endpoint = endpoint
        self._admin_factory = admin
        self._admin: OktaAdmin | None = None
        self._kms_factory = kms
        self._kms: KmsKeys | None = None

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
        changes = self._strategy(current, request, description).create(current, ours, deadline)
        data = json.loads(text)
        data.update(changes)
        pending_text = json.dumps(data)
        self._parse(pending_text)
        self._versions.put_pending(request.token, pending_text, request.rotation_token)
        log.info("pending version stored", extra={"version": request.token})

    def _set(self, request: RotationRequest, description: Description, deadline: Deadline) -> None:
        current = self._parse(self._require(self._versions.text(stage=CURRENT), CURRENT))
        pending = self._pending(request)
        self._strategy(pending, request, description).activate(current, pending, deadline)

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
            strategy = self._strategy(new, request, description)
            strategy.retire(old, new, deadline)
            self._confirm_refused(old, deadline)
            # Only now: the check above signs with a KMS key, which must still work for it.
            strategy.dispose(old, new)
        if PENDING in description.stages.get(request.token, ()):
            self._versions.drop_pending(request.token)

    # -- helpers ---------------------------------------------------------------------------

    def _confirm_refused(self, old: Credentials, deadline: Deadline) -> None:
        """Okta must now refuse the old credential; anything else is reported, not guessed."""
        try:
            self._endpoint.request(old, deadline)
        except (TokenError, SigningError, NetworkError, TlsError) as exc:
            if exc.code in _REFUSED:
                log.info("Okta refuses the old credential", extra={"code": exc.code})
            elif exc.code in SigningError.KEY_UNUSABLE:
                # A re-run after the old KMS key was disabled: nothing can sign with it any more.
                log.info("the old KMS key can no longer sign", extra={"code": exc.code})
            else:
                log.warning(
                    "could not confirm the old credential is refused", extra={"code": exc.code}
                )
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

    def _strategy(
        self, credentials: Credentials, request: RotationRequest, description: Description
    ) -> Strategy:
        if self._admin is None:
            self._admin = self._admin_factory()
        if credentials.grant_type == "password":
            return PasswordStrategy(self._admin, self._probe)
        if credentials.kms_key_id:
            if self._kms is None:
                if self._kms_factory is None:
                    raise RotationError(
                        "ROTATION_KMS_ERROR", "This rotation function was built without KMS."
                    )
                self._kms = self._kms_factory()
            return KmsKeyStrategy(self._admin, self._kms, description.arn, request.token)
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

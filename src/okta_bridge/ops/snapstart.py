"""SnapStart: no secret in the snapshot, and every restored environment unique again.

With SnapStart (python3.12 and later) Lambda runs Init once, when a version is published, saves
the environment's memory, and starts every new environment from that copy. For the bridge:

- **Nothing secret may be in the snapshot.** The before-snapshot hook drops everything that holds a
  secret: the cached credentials (``SecretStore``), the token and Okta's last raw answer
  (``TokenProvider``), the parsed private keys (``client_auth.KEYS``), the pools (keyed by TLS
  policy, which may carry the mTLS client key) and the redactor's registered values.
- **Sockets do not survive a restore.** The pools are closed, so no request tries a dead socket.
- **Pseudo-randomness is copied.** Every restored environment would draw the snapshot's jitter:
  the same token-refresh moments and retry backoffs across the fleet, which is the herd the
  jitter exists to break up. The after-restore hook reseeds ``random`` and the bridge's generators
  from ``os.urandom``. ``uuid4`` (the assertion ``jti``) reads ``os.urandom`` at every call and
  keeps no state in the process, so it is unique after a restore as it is (a test proves it).

The after-restore hook first drops everything again (belt and braces: a restore must never serve
from state of another time), then reseeds. A hook that fails is not hidden: a failed snapshot is
better than a snapshot holding a secret.

**The redactor is cleared too, and that is safe.** Its registered values are the secrets
themselves, so keeping them would put every secret in the snapshot. Clearing them cannot unmask a
log line because the hooks run when no invocation is in flight (before the snapshot, after Init;
after a restore, before the first invocation), and every value they protected is dropped in the
same step. A value loaded later registers itself again on load (``SecretStore``'s ``on_load``,
``TokenEndpoint``'s ``on_token``) before it can be used or logged. The redactor is cleared
*before* the caches: a load racing with the hook would then keep its registration, while the
other order could leave a cached value unregistered.

**With SnapStart the bridge is built during Init** (``prime``): settings parsed, logging set up,
the HTTP client with its TLS context (system store and CA bundle loaded), the secret source
chosen, and the modules a first call imports lazily (botocore's signer, PyJWT, cryptography; boto3
with ``BRIDGE_SECRET_SOURCE=sdk``) imported, so restored environments skip all of that. None of
it holds a secret: the first secret read, token request and key parse happen at the first
invocation, after the restore. A configuration error is not raised during Init (that would fail
the publish): the bridge stays unbuilt and the first invocation reports the error as it does
without SnapStart.

**Only with SnapStart** (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``, see
``config.snapstart``) does the handler import this module, and this module
``snapshot_restore_py``. A failed import of it costs 0.08 to 0.17 ms on a developer machine (6
``sys.path`` entries), this module about 1 ms; and ``snapshot_restore_py`` ships with the
python3.12+ managed runtimes, so there an unconditional attempt would be a real import on every
on-demand cold start, for hooks that never run. Should the variable be missing under SnapStart,
nothing is built during Init: the snapshot holds no bridge, and the bridge's generators are seeded
after the restore, when it is built. Safe, only not primed.
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from okta_bridge import config
from okta_bridge.auth.client_auth import KEYS
from okta_bridge.auth.dpop import DPOP
from okta_bridge.errors import BridgeError
from okta_bridge.logs import REDACTOR, configure, get_logger
from okta_bridge.secret.sources import SDK

if TYPE_CHECKING:
    from okta_bridge.config import Settings
    from okta_bridge.request.bridge import Bridge

RUNTIME_HOOKS = "snapshot_restore_py"
# Imported by a first call on demand; imported during Init instead so the snapshot holds them.
PRELOAD = (
    "okta_bridge.secret.sigv4",
    "okta_bridge.auth.kms_signing",  # a secret naming kms_key_id signs here; no state at import
    "jwt",
    "cryptography.exceptions",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.serialization",
)
PRELOAD_SDK = ("boto3", "botocore.config", "botocore.exceptions")
PRELOAD_LARGE = ("okta_bridge.request.collect", "okta_bridge.delivery.s3")

CurrentBridge = Callable[[], "Bridge | None"]

log = get_logger("snapstart")


def register(current_bridge: CurrentBridge, *, enabled: bool | None = None) -> bool:
    """Register the snapshot hooks with Lambda's runtime; True if they were.

    ``current_bridge`` returns the environment's bridge if one is built (it must not build one).
    ``enabled`` defaults to ``config.snapstart()``; without SnapStart, or without the runtime's
    ``snapshot_restore_py`` module, nothing is imported or registered.
    """
    if not (config.snapstart() if enabled is None else enabled):
        return False
    try:
        hooks = importlib.import_module(RUNTIME_HOOKS)
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot, current_bridge)
    hooks.register_after_restore(after_restore, current_bridge)
    return True


def before_snapshot(current_bridge: CurrentBridge) -> None:
    """Lambda's before-snapshot hook: drop every secret and every connection."""
    forget(current_bridge())
    log.info("snapshot: no secret, token, key or connection kept")


def after_restore(current_bridge: CurrentBridge) -> None:
    """Lambda's after-restore hook: drop everything again, then reseed every jitter generator."""
    bridge = current_bridge()
    forget(bridge)
    reseed(bridge)
    log.info("restored from a snapshot: caches empty, generators reseeded")


def forget(bridge: Bridge | None) -> None:
    """Drop cached secrets, token, parsed keys, registered values and pooled connections."""
    REDACTOR.clear()  # first: see the module docstring
    KEYS.clear()
    DPOP.clear()  # a restored environment makes a DPoP key of its own
    mints = sys.modules.get("okta_bridge.ops.mints")  # diagnose's last token, if it ever ran
    if mints is not None:
        mints.MINTS.clear()
    if bridge is not None:
        bridge.reset()
        bridge.close()


def reseed(bridge: Bridge | None) -> None:
    """Seed ``random`` and the bridge's jitter generators from ``os.urandom``."""
    random.seed()
    if bridge is not None:
        bridge.reseed()


def prime(build: Callable[[], Bridge]) -> Bridge | None:
    """Build the bridge during Init and import what its first call would; reads no secret.

    A ``BridgeError`` (a configuration error) is logged, not raised: the first invocation meets
    it again and answers it.
    """
    try:
        bridge = build()
    except BridgeError as exc:
        configure()  # the bridge would have; JSON lines, not the stderr fallback
        log.warning(
            "bridge not built during Init; the first invocation reports why",
            extra={"code": exc.code},
        )
        return None
    preload(bridge.settings)
    return bridge


def preload(settings: Settings) -> None:
    """Import the modules the bridge imports on first use (missing ones are skipped)."""
    names = PRELOAD + (PRELOAD_SDK if settings.secret_source == SDK else ()) + PRELOAD_LARGE
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            log.debug("not preloaded", extra={"module": name})

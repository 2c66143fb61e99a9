"""The verified TLS context, and its system trust store parsed during Init on a thread.

Parsing the system CA store (~140 roots) is the largest single cost of a cold start's first call
(~20 ms measured; OpenSSL's ``set_default_verify_paths``). It depends on nothing an invocation
brings, and OpenSSL parses without holding the GIL, so the handler starts it first thing in
Init (``prepare``) and it runs while the rest of the code imports; the first pool takes the
result (``context``). A function gets one vCPU's worth of CPU at 1,769 MB (AWS docs): above that
the two overlap; at or below it they share that CPU, and the parse costs what it did, only
earlier. Init is billed like an invocation, so this moves no cost into a free phase:
it takes ~20 ms off the cold start's wall time and billed duration where the CPU allows, and adds
nothing elsewhere. Under SnapStart the parsed store is part of the snapshot (public data, unlike
the secret and tokens kept out of it).
"""

from __future__ import annotations

import ssl
import threading

# How long the first pool waits for the Init thread's store before parsing one itself: the parse
# takes tens of milliseconds; a thread that has not finished by then is starved, not working.
PREPARED_WAIT_S = 2.0

_lock = threading.Lock()
_thread: threading.Thread | None = None
_prepared: list[ssl.SSLContext] = []  # the Init thread's context, until the first pool takes it


def prepare() -> None:
    """Start parsing the system trust store on a daemon thread (once per process)."""
    global _thread  # noqa: PLW0603 - one preparation per execution environment
    with _lock:
        if _thread is not None:
            return
        # ssl is imported above, by this thread: importing it is Python code, holding the GIL,
        # which would only slow the imports it is meant to run beside. Not a daemon: a process
        # that exits while OpenSSL is still parsing (a short script that imports the handler)
        # must wait the few milliseconds, or OpenSSL's exit-time cleanup frees what the parse
        # is using and the process crashes on its way out.
        _thread = threading.Thread(target=_prepare, name="trust-store", daemon=False)
        _thread.start()


def _prepare() -> None:
    try:
        context = system_context()
    except Exception:  # noqa: BLE001 - the first pool parses again and reports what fails
        return
    with _lock:
        _prepared.append(context)


def _take_prepared() -> ssl.SSLContext | None:
    """The Init thread's context, to exactly one caller (later pools build their own, so that
    one pool's enterprise bundle never joins another's trust)."""
    with _lock:
        thread = _thread
    if thread is not None:
        thread.join(PREPARED_WAIT_S)
    with _lock:
        return _prepared.pop() if _prepared else None


def context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verified TLS 1.2+: the system store, plus the enterprise CA bundle when given."""
    built = _take_prepared() or system_context()
    if ca_bundle is not None:
        built.load_verify_locations(cafile=ca_bundle)
    return built


def system_context() -> ssl.SSLContext:
    """Verified TLS 1.2+ trusting the system store (or, on an image without one, Mozilla's roots
    as botocore ships them)."""
    built = ssl.create_default_context()
    built.minimum_version = ssl.TLSVersion.TLSv1_2
    if ssl.get_default_verify_paths().cafile is None and built.cert_store_stats()["x509_ca"] == 0:
        _load_fallback_roots(built)
    return built


def _load_fallback_roots(built: ssl.SSLContext) -> None:
    # Some minimal images have no system store; botocore ships Mozilla's roots.
    from pathlib import Path  # noqa: PLC0415

    try:
        import botocore  # noqa: PLC0415
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return
    bundle = Path(botocore.__file__).parent / "cacert.pem"
    if bundle.is_file():  # pragma: no branch
        built.load_verify_locations(cafile=str(bundle))

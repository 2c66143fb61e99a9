"""Connections: one verified TLS context, pooled keep-alive connections per TLS policy and proxy
route, and the connection opened ahead of time on a cold start.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

import urllib3

from okta_bridge.config import Settings
from okta_bridge.logs import get_logger
from okta_bridge.transport import trust
from okta_bridge.transport.deadline import Deadline, WatchedPool, pinned_pool
from okta_bridge.transport.tls import TlsPolicy, load_client_certificate

USER_AGENT = "okta-bridge/0.1"


log = get_logger("transport")


class Pools:
    """One pool manager per (TLS policy, proxied): pinned or client-certificate connections never
    share a pool with plain ones, and the proxy sees a CONNECT tunnel only. Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = trust.context(settings.ca_bundle)
        self._lock = threading.Lock()
        self._managers: dict[tuple[TlsPolicy | None, bool], urllib3.PoolManager] = {}

    def manager_for(self, host: str, tls: TlsPolicy | None) -> urllib3.PoolManager:
        proxied = self._settings.proxy.applies_to(host)
        key = (None if tls is None or tls.plain else tls, proxied)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = self._build(key[0], proxied)
                self._managers[key] = manager
            return manager

    def _build(self, tls: TlsPolicy | None, proxied: bool) -> urllib3.PoolManager:
        context = self._context
        if tls is not None:
            context = trust.context(self._settings.ca_bundle)
            load_client_certificate(context, tls)
        args: dict[str, Any] = {
            "ssl_context": context,
            "maxsize": 10,
            "retries": False,
            "headers": {"User-Agent": USER_AGENT},
        }
        manager = (
            urllib3.ProxyManager(self._settings.proxy.https_proxy or "", **args)
            if proxied
            else urllib3.PoolManager(num_pools=4, **args)
        )
        pool = WatchedPool if tls is None or not tls.pins else pinned_pool(tls.pins)
        manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": pool}
        return manager

    def preconnect(
        self, url: str, *, tls: TlsPolicy | None, deadline: Deadline
    ) -> threading.Thread:
        """Open one pooled connection to ``url``'s origin (TCP, proxy tunnel, TLS) on a thread.

        Used on a cold start while the token request is in flight, so the API call that follows
        finds its connection ready instead of paying the handshakes after the token. A failure is
        ignored here: the request itself meets it and reports it. urllib3 has no public call for
        this; ``_get_conn``/``_put_conn`` are its pool's own checkout and return (pinned in the
        lock, and a test would notice a change).
        """
        host = urllib.parse.urlsplit(url).hostname or ""
        manager = self.manager_for(host, tls)
        timeout = deadline.cap(self._settings.connect_timeout)

        def connect() -> None:
            pool: Any = None
            connection: Any = None
            try:
                pool = manager.connection_from_url(url)
                connection = pool._get_conn(timeout=timeout)
                if connection.sock is None:
                    # Back to the pool as soon as it is up: its TLS 1.3 session tickets are
                    # processed when it is taken (WatchedConnection.is_connected).
                    connection.timeout = timeout
                    connection.connect()
            except Exception as exc:  # noqa: BLE001 - the request reports what matters
                log.debug("preconnect failed", extra={"error": type(exc).__name__})
                if connection is not None:
                    connection.close()
            finally:
                if pool is not None and connection is not None:
                    pool._put_conn(connection)

        thread = threading.Thread(target=connect, name="preconnect", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Close pooled connections and forget the pools (keyed by TLS policy, which may carry
        an mTLS client key); the next request opens new ones. SnapStart: a restored snapshot's
        sockets are dead, and a snapshot must not hold a key."""
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def idle_connections(self) -> int:
        """Open connections waiting in the pools (SnapStart tests: none in a snapshot)."""
        with self._lock:
            managers = list(self._managers.values())
        count = 0
        for manager in managers:
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                queue = getattr(pool, "pool", None)
                if queue is not None:
                    count += sum(1 for conn in list(queue.queue) if getattr(conn, "sock", None))
        return count

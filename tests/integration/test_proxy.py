"""HTTPS_PROXY / NO_PROXY: TLS goes end to end through a CONNECT tunnel, or bypasses the proxy."""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from okta_bridge.config import ProxySettings
from okta_bridge_dev.emulators.stack import LocalStack
from tests.integration.conftest import make_harness


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A minimal HTTP CONNECT proxy that records the targets it tunnelled to."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.targets: list[str] = []
        self.lock = threading.Lock()


class _Tunnel(socketserver.StreamRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        if len(request) < 2 or request[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, port = request[1].rsplit(":", 1)
        with self.server.lock:
            self.server.targets.append(request[1])
        upstream = socket.create_connection((host, int(port)), timeout=5)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 5)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


@contextlib.contextmanager
def serving_proxy() -> Iterator[ConnectProxy]:
    """A ``ConnectProxy`` serving on a thread, shut down afterwards (the tests' ``proxy``)."""
    server = ConnectProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with serving_proxy() as server:
        yield server


def test_https_proxy_tunnels_token_and_api_calls(stack: LocalStack, proxy: ConnectProxy) -> None:
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    harness = make_harness(stack, proxy=ProxySettings(https_proxy=url))
    assert harness.invoke({})["statusCode"] == 200
    okta = stack.okta.base_url.removeprefix("https://")
    api = stack.api.base_url.removeprefix("https://")
    assert okta in proxy.targets
    assert api in proxy.targets


def test_no_proxy_bypasses_the_proxy(stack: LocalStack, proxy: ConnectProxy) -> None:
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    harness = make_harness(stack, proxy=ProxySettings(https_proxy=url, no_proxy="127.0.0.1"))
    assert harness.invoke({})["statusCode"] == 200
    assert proxy.targets == []

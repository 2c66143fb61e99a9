"""An idle pooled connection is kept only if what made it readable was TLS records with nothing
for the application (TLS 1.3 session tickets), not data or the end of the stream (issue 18: a
connection opened ahead of its request goes back to the pool at once, tickets unread)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from urllib3.util.wait import wait_for_read

from okta_bridge.transport.deadline import WatchedConnection
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack


class OneConnectionServer:
    """Accepts one TLS connection, then does ``after`` with it and holds it until stopped."""

    def __init__(self, stack: LocalStack, after: str, *, tls12: bool = False) -> None:
        self.context = server_context(stack.server_cert)
        if tls12:
            self.context.maximum_version = ssl.TLSVersion.TLSv1_2
        if after != "tickets":
            # The data or the close is then the one record after the handshake, so "readable"
            # means it is there (tickets first, and Nagle's algorithm could hold it back).
            self.context.num_tickets = 0
        self.after = after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        raw, _ = self.listener.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.context.wrap_socket(raw, server_side=True) as tls:
            if self.after == "data":
                tls.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            elif self.after == "close":
                tls.close()
            self.done.set()
            self.stop.wait(10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def connect(stack: LocalStack) -> Iterator[object]:
    servers: list[OneConnectionServer] = []
    connections: list[WatchedConnection] = []

    def open_one(after: str, *, tls12: bool = False) -> WatchedConnection:
        server = OneConnectionServer(stack, after, tls12=tls12)
        servers.append(server)
        context = ssl.create_default_context(cafile=str(stack.ca.ca_pem_path))
        connection = WatchedConnection("127.0.0.1", server.port, ssl_context=context, timeout=5)
        connections.append(connection)
        connection.connect()
        assert server.done.wait(10)
        return connection

    yield open_one
    for connection in connections:
        connection.close()
    for server in servers:
        server.close()


def test_a_fresh_tls13_connection_readable_with_its_tickets_is_kept(connect: object) -> None:
    connection = connect("tickets")  # type: ignore[operator]
    assert connection.sock.version() == "TLSv1.3"
    assert wait_for_read(connection.sock, timeout=5)  # the tickets are there, unread
    assert connection.is_connected
    assert not wait_for_read(connection.sock, timeout=0.0)  # and now read
    assert connection.sock.gettimeout() == 5  # the socket's timeout is as it was


def test_a_tls12_connection_has_nothing_to_read_and_is_kept(connect: object) -> None:
    connection = connect("tickets", tls12=True)  # type: ignore[operator]
    assert connection.sock.version() == "TLSv1.2"
    assert connection.is_connected


def test_an_idle_connection_with_data_waiting_is_dropped(connect: object) -> None:
    connection = connect("data")  # type: ignore[operator]
    assert wait_for_read(connection.sock, timeout=5)
    assert not connection.is_connected


def test_an_idle_connection_the_server_closed_is_dropped(connect: object) -> None:
    connection = connect("close")  # type: ignore[operator]
    assert wait_for_read(connection.sock, timeout=5)
    assert not connection.is_connected


def test_no_socket_is_no_connection() -> None:
    assert not WatchedConnection("127.0.0.1", 1).is_connected

"""An idle pooled connection is kept only if what made it readable was TLS records with nothing
for the application (TLS 1.3 session tickets), not data or the end of the stream (issue 18: a
connection opened ahead of its request goes back to the pool at once, tickets unread)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from urllib3.util.wait import wait_for_read

from okta_bridge.transport.deadline import WatchedConnection
from okta_bridge_dev.emulators.pki import server_context
from okta_bridge_dev.emulators.stack import LocalStack

ANSWER = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"


class IdleTlsServer:
    """Accepts one TLS connection, sends ``tickets`` TLS 1.3 session tickets (OpenSSL's default
    is two), then ``payload``: bytes, ``"close_notify"`` (a TLS close), ``"eof"`` (the socket
    closed without one) or nothing; and holds the connection until ``close``."""

    def __init__(
        self,
        stack: LocalStack,
        *,
        tickets: int = 2,
        payload: bytes | str | None = None,
        tls12: bool = False,
    ) -> None:
        self.context = server_context(stack.server_cert)
        self.context.num_tickets = tickets
        if tls12:
            self.context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.payload = payload
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        raw, _ = self.listener.accept()
        # Each record leaves at once: Nagle's algorithm could hold back what follows the tickets.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.context.wrap_socket(raw, server_side=True) as tls:
            if self.payload == "close_notify":
                tls.setblocking(False)  # send close_notify, do not wait for the client's
                with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    tls.unwrap()
            elif self.payload == "eof":
                tls.close()
            elif isinstance(self.payload, bytes):
                tls.sendall(self.payload)
            self.done.set()
            self.stop.wait(10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


class IdleConnections:
    """``WatchedConnection``s to ``IdleTlsServer``s, opened once the server has sent what it
    sends; ``close`` closes them all."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.opened: list[tuple[IdleTlsServer, WatchedConnection]] = []

    def open(
        self, *, tickets: int = 2, payload: bytes | str | None = None, tls12: bool = False
    ) -> WatchedConnection:
        server = IdleTlsServer(self.stack, tickets=tickets, payload=payload, tls12=tls12)
        context = ssl.create_default_context(cafile=str(self.stack.ca.ca_pem_path))
        connection = WatchedConnection("127.0.0.1", server.port, ssl_context=context, timeout=5)
        self.opened.append((server, connection))
        connection.connect()
        assert server.done.wait(10)
        return connection

    def close(self) -> None:
        for server, connection in self.opened:
            connection.close()
            server.close()


@pytest.fixture
def connections(stack: LocalStack) -> Iterator[IdleConnections]:
    idle = IdleConnections(stack)
    yield idle
    idle.close()


def test_a_fresh_tls13_connection_readable_with_its_tickets_is_kept(
    connections: IdleConnections,
) -> None:
    connection = connections.open()
    assert connection.sock.version() == "TLSv1.3"
    assert wait_for_read(connection.sock, timeout=5)  # the tickets are there, unread
    assert connection.is_connected
    assert not wait_for_read(connection.sock, timeout=0.0)  # and now read
    assert connection.sock.gettimeout() == 5  # the socket's timeout is as it was


def test_a_tls12_connection_has_nothing_to_read_and_is_kept(connections: IdleConnections) -> None:
    connection = connections.open(tls12=True)
    assert connection.sock.version() == "TLSv1.2"
    assert connection.is_connected


def test_an_idle_connection_with_data_waiting_is_dropped(connections: IdleConnections) -> None:
    # No tickets: the data is then the one record after the handshake, so "readable" means it
    # is there.
    connection = connections.open(tickets=0, payload=ANSWER)
    assert wait_for_read(connection.sock, timeout=5)
    assert not connection.is_connected


def test_an_idle_connection_the_server_closed_is_dropped(connections: IdleConnections) -> None:
    connection = connections.open(tickets=0, payload="eof")
    assert wait_for_read(connection.sock, timeout=5)
    assert not connection.is_connected


def test_no_socket_is_no_connection() -> None:
    assert not WatchedConnection("127.0.0.1", 1).is_connected

"""The socket the log's reader talks on when the Docker SDK started it: what is under the SDK's SocketIO over
plain TCP or a Unix socket, the SSL socket itself over TLS (it has no ``_sock``)."""

from __future__ import annotations

import socket
import ssl

from pytest_kind_audit.nodes import sdk_stream_socket


def test_a_socketio_gives_the_socket_under_it() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        stream = socket.SocketIO(ours, "rwb")
        assert sdk_stream_socket(stream) is ours
        sdk_stream_socket(stream).sendall(b"cur 1\n")
        assert theirs.recv(16) == b"cur 1\n"


def test_a_tls_socket_is_used_as_it_is() -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        tls = ssl.create_default_context().wrap_socket(ours, server_hostname="127.0.0.1", do_handshake_on_connect=False)
        with tls:
            assert sdk_stream_socket(tls) is tls

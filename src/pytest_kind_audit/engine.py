"""The Docker Engine API calls that a run makes every time, over the daemon's Unix socket with the
standard library only: ping, an image's id, listing and inspecting containers, a file in or out of one as a
tar archive, and an exec's raw stream (the audit log's reader shell).

Why not the Docker SDK: importing it (requests, urllib3, ...) costs about 0.2 s, as much as the rest of a
one-test run on a reused cluster. What is rarer (exec with output, creating and removing containers) still
goes through the SDK in nodes.py, which with this module is all that talks to Docker. Only a local daemon
(``DOCKER_HOST`` unset or ``unix://``) is spoken to here; for any other ``DOCKER_HOST`` (TCP, TLS, SSH)
``Engine.from_env()`` is None and the SDK does it all.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any
from urllib.parse import quote

__all__ = ["Engine", "EngineError"]

DEFAULT_SOCKET = "/var/run/docker.sock"
_HEADER_LIMIT = 64 * 1024


class EngineError(OSError):
    """The daemon did not answer, or answered with an error status."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Engine:
    def __init__(self, path: str = DEFAULT_SOCKET, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout

    @classmethod
    def from_env(cls, timeout: float = 60.0) -> Engine | None:
        """The local daemon the SDK's ``docker.from_env()`` would use, or None when it is not a Unix socket.
        ``timeout`` bounds each connect, send and receive."""
        host = os.environ.get("DOCKER_HOST", "")
        if not host:
            return cls(timeout=timeout)
        if host.startswith("unix://"):
            return cls(host[len("unix://") :], timeout)
        return None

    def _connect(self, timeout: float | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            why = exc.strerror or exc
            raise EngineError(f"cannot connect to the Docker daemon at unix://{self.path}: {why}") from None
        return sock

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, bytes]:
        """One call as HTTP/1.0 (no keep-alive, no chunked body): its status and body. ``body`` is sent as
        JSON, ``raw`` as a tar archive."""
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        kind = "application/x-tar" if raw is not None else "application/json"
        head = f"{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: {kind}\r\n"
        sock = self._connect()
        try:
            sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            raise EngineError(f"the Docker daemon did not answer {method} {path}: {exc}") from None
        finally:
            sock.close()
        status, _, payload = _split_response(b"".join(chunks))
        return status, payload

    def ping(self) -> None:
        status, payload = self.request("GET", "/_ping")
        if status != 200:
            raise EngineError(f"the Docker daemon answered its ping with {_message(payload, status)}", status)

    def image_id(self, name: str) -> str | None:
        """The id of a local image (by reference or id), or None when it is not here."""
        status, payload = self.request("GET", f"/images/{quote(name, safe='/:')}/json")
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"inspecting image {name}: {_message(payload, status)}", status)
        return str(json.loads(payload)["Id"])

    def containers(self, label: str) -> list[dict[str, Any]]:
        """``docker ps -a --filter label=...``: the summaries of every container with that label, any state."""
        filters = quote(json.dumps({"label": [label]}), safe="")
        status, payload = self.request("GET", f"/containers/json?all=1&filters={filters}")
        if status != 200:
            raise EngineError(f"listing containers: {_message(payload, status)}", status)
        found: list[dict[str, Any]] = json.loads(payload)
        return found

    def get_archive(self, container: str, path: str) -> bytes | None:
        """A path of a container as a tar archive, or None when it is not there."""
        status, payload = self.request("GET", f"/containers/{quote(container, safe='')}/archive?path={quote(path)}")
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"reading {path} of {container}: {_message(payload, status)}", status)
        return payload

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        """Unpack a tar archive at ``path`` in a container."""
        status, payload = self.request("PUT", f"/containers/{quote(container, safe='')}/archive?path={quote(path)}",
                                       raw=data)  # fmt: skip
        if status != 200:
            raise EngineError(f"writing to {path} of {container}: {_message(payload, status)}", status)

    def inspect(self, name: str) -> dict[str, Any] | None:
        """``docker inspect`` of a container (by name or id), or None when there is none."""
        status, payload = self.request("GET", f"/containers/{quote(name, safe='')}/json")
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"inspecting container {name}: {_message(payload, status)}", status)
        found: dict[str, Any] = json.loads(payload)
        return found

    def exec_stream(self, container: str, argv: list[str], *, timeout: float) -> socket.socket:
        """Start ``argv`` in a container with its stdin and stdout on the returned socket (stderr dropped):
        what ``docker exec -i`` does. The stream is Docker's multiplexed one (8-byte frame headers)."""
        body = {"AttachStdin": True, "AttachStdout": True, "AttachStderr": False, "Tty": False, "Cmd": argv}
        status, payload = self.request("POST", f"/containers/{quote(container, safe='')}/exec", body)
        if status != 201:
            raise EngineError(f"exec in {container}: {_message(payload, status)}", status)
        exec_id = json.loads(payload)["Id"]
        data = b'{"Detach": false, "Tty": false}'
        sock = self._connect(timeout)
        try:
            sock.sendall(
                f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            head = _read_head(sock)  # byte by byte: the stream's first bytes must stay in the socket
        except OSError as exc:
            sock.close()
            raise EngineError(f"starting the exec in {container}: {exc}") from None
        status = _status(head)
        if status not in (101, 200):
            sock.close()
            raise EngineError(f"starting the exec in {container}: status {status}", status)
        return sock


def _read_head(sock: socket.socket) -> bytes:
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte or len(head) > _HEADER_LIMIT:
            raise ConnectionError("the Docker daemon closed the connection")
        head += byte
    return bytes(head)


def _status(head: bytes) -> int:
    parts = head.split(b" ", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        raise EngineError(f"not an HTTP answer from the Docker daemon: {head[:60]!r}") from None


def _split_response(raw: bytes) -> tuple[int, bytes, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise EngineError("the Docker daemon closed the connection without an answer")
    return _status(head), head, body


def _message(payload: bytes, status: int) -> str:
    try:
        return str(json.loads(payload)["message"])
    except (ValueError, KeyError, TypeError):
        return f"status {status}"

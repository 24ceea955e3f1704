"""Docker reached through a ``DOCKER_HOST`` that is not a Unix socket (tcp://, and TCP with TLS): engine.py
steps aside and the Docker SDK does every call, the audit log's reader included. The daemon is the real one,
reached through a forwarder on 127.0.0.1 that copies bytes to its Unix socket and notes the requests it
carries, so a test sees the SDK really went that way. The session's cluster is attached a second time and
that attachment closed, never deleted."""

from __future__ import annotations

import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_kind_audit import AuditedCluster, AuditPolicy, nodes
from pytest_kind_audit.engine import DEFAULT_SOCKET, Engine
from pytest_kind_audit.environment import Environment
from pytest_kind_audit.nodes import (
    CLUSTER_LABEL,
    READER_NAME,
    DockerLogSource,
    LogStreamBroken,
    NodeShell,
    cluster_containers,
    control_plane,
    control_planes,
    docker_client,
    exec_output,
    image_id,
    name_of,
    read_image_file,
    remove_containers,
)

if TYPE_CHECKING:
    from pytest_kind_audit.nodes import NodeContainer

pytestmark = pytest.mark.e2e

_REQUEST = re.compile(rb"(?:GET|POST|PUT|DELETE|HEAD) (/\S*) HTTP/1\.[01]\r\n")


class DockerForwarder:
    """127.0.0.1:<port> to the local daemon's Unix socket, byte for byte both ways (TLS ended here when a
    context is given). Counts its connections, notes the request lines it carried to Docker, and counts the
    requests that start the audit log's reader (the only ones naming it: see ``readers``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        self.reader_execs = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was shut down
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
            upstream.connect(DEFAULT_SOCKET)
        except OSError:
            _shut(client)
            upstream.close()
            return
        with self._lock:
            self._open += [client, upstream]
        threading.Thread(target=self._copy, args=(upstream, client, False), daemon=True).start()
        self._copy(client, upstream, True)

    def _copy(self, source: socket.socket, target: socket.socket, to_docker: bool) -> None:
        try:
            while data := source.recv(65536):
                if to_docker:
                    with self._lock:
                        self.requests += [m.decode() for m in _REQUEST.findall(data)]
                        self.reader_execs += data.count(READER_NAME.encode())
                target.sendall(data)
        except OSError:
            pass
        finally:  # either side gone: both go (which ends the other direction's recv too)
            _shut(source)
            _shut(target)

    def close(self) -> None:
        _shut(self.listener)  # wakes the blocked accept
        with self._lock:
            for sock in self._open:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _tls_files(folder: Path) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 as the SDK wants them in DOCKER_CERT_PATH (ca.pem, cert.pem,
    key.pem; the client presents the same one, unchecked), and the forwarder's server context."""
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)  # fmt: skip
    (folder / "ca.pem").write_bytes((folder / "cert.pem").read_bytes())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture(params=["tcp", "tls"])
def sdk_docker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[DockerForwarder]:
    """DOCKER_HOST=tcp://127.0.0.1:<forwarder> (with DOCKER_TLS_VERIFY for "tls"), and a client cache of the
    test's own, so no later test meets a client of a forwarder that is gone."""
    tls = _tls_files(tmp_path / "certs") if request.param == "tls" else None
    forwarder = DockerForwarder(tls)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{forwarder.port}")
    if tls is not None:
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "certs"))
        for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would take these over ca.pem
            monkeypatch.delenv(bundle, raising=False)
    else:
        monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
        monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    monkeypatch.setattr(nodes, "_clients", {})
    try:
        yield forwarder
    finally:
        forwarder.close()


def readers(node: NodeContainer) -> set[str]:
    """The reader shells running in the node (their pids). The pattern does not spell the reader's name, so
    the forwarder sees that name only where a reader is started."""
    pattern = f"{READER_NAME[:-1]}[{READER_NAME[-1]}]"
    return set(exec_output(node, ["pgrep", "-f", pattern])[1].decode().split())


def test_an_attached_cluster_reads_its_audit_log_through_the_sdk(
    namespace: str,  # made, and deleted, while Docker is still the local socket
    audited_cluster: AuditedCluster,
    kind_audit_environment: Environment,
    audit_policy: AuditPolicy,
    sdk_docker: DockerForwarder,
    tmp_path: Path,
) -> None:
    # The session cluster's own handles are left alone: a container the SDK fetched for them now would keep
    # this test's client, whose forwarder is gone after it.
    assert Engine.from_env() is None, "a tcp:// DOCKER_HOST must leave the local socket alone"
    local = Engine(DEFAULT_SOCKET)  # what the daemon has, asked past the forwarder
    name = audited_cluster.name
    client = docker_client()
    found = cluster_containers(client, name)
    assert sorted(name_of(c) for c in found) == sorted(
        c["Names"][0].lstrip("/") for c in local.containers(f"{CLUSTER_LABEL}={name}")
    )
    assert not any(isinstance(c, nodes.Node) for c in found), "the SDK's containers, not the Engine API's"
    node = control_plane(client, name)
    assert node is not None and node.name == audited_cluster.node
    assert control_planes(client)[name].id == node.id

    before = readers(node)
    # What provision._attach does for a cluster without a host record (a second process, another worker).
    second = AuditedCluster.attach(name=name, workdir=tmp_path / "attached", environment=kind_audit_environment,
                                   policy=audit_policy, skip_history=True)  # fmt: skip
    try:
        source = second.audit.source
        assert isinstance(source, DockerLogSource)
        configmap = "via-sdk-" + secrets.token_hex(3)
        audited_cluster.kubectl("create", "configmap", configmap, "-n", namespace)
        second.audit.assert_audited(verb="create", resource="configmaps", namespace=namespace, name=configmap,
                                    count=1)  # fmt: skip
        assert source.starts == 1, "one reader served every read"
        mine = readers(node) - before
        assert len(mine) == 1, f"the attached cluster's reader in the node: {mine}"
        assert sdk_docker.reader_execs == 1, "the reader was started once, through DOCKER_HOST"
    finally:
        second.close()  # the reader ends; the session's cluster keeps running
    deadline = time.monotonic() + 20
    while readers(node) & mine:
        assert time.monotonic() < deadline, "the closed attachment left its reader running in the node"
        time.sleep(0.1)
    running = local.inspect(audited_cluster.node)
    assert running is not None and running["State"]["Running"], "closing must not stop the session's cluster"


@pytest.mark.parametrize("sdk_docker", ["tcp"], indirect=True)  # nothing here differs over TLS
def test_a_broken_stream_is_explained_and_images_are_read_through_the_sdk(
    sdk_docker: DockerForwarder, kind_audit_environment: Environment
) -> None:
    image = kind_audit_environment.node_image
    local = Engine(DEFAULT_SOCKET)
    client = docker_client()
    assert image_id(client, image) == local.image_id(image)
    version = read_image_file(client, image, "/kind/version")
    assert version is not None and re.fullmatch(rb"v1\.\d+\.\d+\S*\s*", version), version
    # A node that never ran, then one that is gone: the stream's failure says which, in one line.
    container = client.containers.create(image, entrypoint=["true"], name=f"kat-sdk-{secrets.token_hex(3)}")
    try:
        shell = NodeShell(container, "/var/log/kubernetes/kube-apiserver-audit.log", timeout=3)
        with pytest.raises(LogStreamBroken) as info:
            shell.ask("bak")
        assert str(info.value).endswith(f"{container.name} is gone: the node container is created (exit code 0)")
        remove_containers([container], timeout=30)
        assert local.inspect(container.id or "") is None, "removed through the SDK"
        with pytest.raises(LogStreamBroken) as info:
            shell.ask("bak")
        assert str(info.value).endswith(f"{container.name} is gone: the node container was removed")
    finally:
        if local.inspect(container.id or "") is not None:
            container.remove(force=True)
    assert sdk_docker.connections > 0 and sdk_docker.requests

"""A kind cluster with API auditing: create, use, read its audit log, delete. No pytest here.

Usable from a script::

    cluster = AuditedCluster.create(name="demo", policy=AuditPolicy.for_level("Metadata"), workdir=Path("/tmp/x"))
    try:
        cluster.kubectl("create", "namespace", "demo")
        cluster.audit.assert_audited(verb="create", resource="namespaces", name="demo")
    finally:
        cluster.delete()
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import _commands
from .exceptions import ClusterError, CommandError, EnvironmentNotReady
from .follow import LogFollower
from .kindconfig import AUDIT_LOG_PATH, KindConfig, Version, parse_version
from .log import AuditLog
from .ownership import Fingerprint, Records, put_node_file, stale_clusters, write_fingerprint

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = ["AuditedCluster", "DockerLogSource", "Environment", "check_environment"]

CREATE_WAIT = "180s"
CREATE_TIMEOUT = 600.0


def docker_client() -> docker.DockerClient:
    """A Docker SDK client, or EnvironmentNotReady naming the fix."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException as exc:
        raise EnvironmentNotReady(
            f"Docker is not reachable ({_first_line(exc)}): start the Docker daemon, or set DOCKER_HOST"
        ) from None
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass(frozen=True)
class Environment:
    """What was found: the kind binary and versions, the node image and its Kubernetes version."""

    kind_binary: str
    kind_version: Version
    image: str
    kubernetes_version: Version
    cgroup_v1_host: bool


def check_environment(kind_binary: str, image: str) -> Environment:
    """Check Docker, kind and the node image before anything is created; EnvironmentNotReady if one is missing."""
    client = docker_client()
    found = shutil.which(kind_binary)
    if not found:
        raise EnvironmentNotReady(
            f"kind binary {kind_binary!r} not found: install kind (go install sigs.k8s.io/kind@v0.30.0) "
            "or pass --kind-audit-kind-binary"
        )
    try:
        out = _commands.run([found, "version"], timeout=30).stdout
        kind_version = parse_version(out)
    except (CommandError, ValueError) as exc:
        raise EnvironmentNotReady(f"{found} version failed: {_first_line(exc)}") from None
    if not image:
        image = _default_image(found)
    kubernetes_version = _image_kubernetes_version(client, image)
    cgroup_v1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    return Environment(found, kind_version, image, kubernetes_version, cgroup_v1)


def _default_image(kind_binary: str) -> str:
    """kind's own default node image (kind pulls it if missing)."""
    out = _commands.run([kind_binary, "create", "cluster", "--help"], timeout=30, check=False).stdout
    for token in out.split():
        if token.startswith("kindest/node:"):
            return token.rstrip(")\"',")
    return ""


def _image_kubernetes_version(client: docker.DockerClient, image: str) -> Version:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        if image.startswith("kindest/node:"):
            # kind will pull it; the tag names the Kubernetes version.
            return parse_version(tag)
        raise EnvironmentNotReady(
            f"node image {image!r} is not present: build it (ci/build-node-image.sh) or docker pull it"
        ) from None
    return parse_version(_read_file_from_image(client, image, "/kind/version"))


def _read_file_from_image(client: docker.DockerClient, image: str, path: str) -> str:
    import io
    import tarfile

    container = client.containers.create(image, entrypoint=["true"])
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member else None
            return f.read().decode() if f else ""
    finally:
        container.remove(force=True)


class ContainerFiles:
    """The audit log's files inside the control-plane container, read through the Docker SDK: only the
    bytes from an offset on cross the wire (``tail -c +N``), never the whole file."""

    # One open file gives both the inode and the bytes, so a rotation between two reads cannot mix files.
    _READ = 'exec 3<"$0" || exit 3; stat -L -c "%i %s" /dev/fd/3; tail -c +"$1" <&3'

    def __init__(self, container: Container, path: str = AUDIT_LOG_PATH) -> None:
        self.container = container
        self.path = path

    def _exec(self, *argv: str) -> tuple[int, bytes]:
        result = self.container.exec_run(list(argv), stdout=True, stderr=False)
        return result.exit_code or 0, _output(result.output)

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        code, out = self._exec("sh", "-c", self._READ, self.path, str(offset + 1))
        if code != 0 or b"\n" not in out:
            return None, 0, b""  # not created yet
        head, _, data = out.partition(b"\n")
        inode, size = head.split()
        return int(inode), int(size), data

    def backups(self) -> list[tuple[int, str]]:
        stem, dot, ext = self.path.rpartition(".")
        pattern = f"{stem}-*.{ext}" if dot else f"{self.path}-*"
        _, out = self._exec("sh", "-c", f'for f in {pattern}; do [ -e "$f" ] && stat -c "%i %n" "$f"; done; true')
        rows = [line.split(" ", 1) for line in out.decode().splitlines() if " " in line]
        return sorted(((int(ino), name) for ino, name in rows), key=lambda row: row[1])

    def read_path(self, path: str, offset: int) -> bytes:
        return self._exec("tail", "-c", f"+{offset + 1}", path)[1]


class DockerLogSource(LogFollower):
    """The audit log inside a kind node, followed across rotations."""

    def __init__(self, container: Container, path: str = AUDIT_LOG_PATH) -> None:
        super().__init__(ContainerFiles(container, path))


def _output(output: bytes | Iterator[bytes] | None) -> bytes:
    # exec_run returns bytes unless streaming was asked for.
    if output is None:
        return b""
    return output if isinstance(output, bytes) else b"".join(output)


class AuditedCluster:
    """A running kind cluster whose API server writes an audit log; ``audit`` is the session's events."""

    def __init__(
        self,
        name: str,
        *,
        kind_binary: str,
        kubeconfig: Path,
        environment: Environment | None = None,
        timeout: float = 10.0,
        created: bool = True,
        records: Records | None = None,
        skip_history: bool = False,
    ) -> None:
        self.name = name
        self.kind_binary = kind_binary
        self.kubeconfig = kubeconfig
        self.environment = environment
        #: True when this process created the cluster, False when it attached to an existing one.
        self.created = created
        self.created_at = datetime.now(timezone.utc)
        self.node = f"{name}-control-plane"
        #: The user name this process's kubectl acts as.
        self.identity = "kubernetes-admin"
        #: Its groups (kubeadm's admin.conf user is in kubeadm:cluster-admins since Kubernetes 1.29).
        self.identity_groups: tuple[str, ...] = ("kubeadm:cluster-admins", "system:authenticated")
        # The same identity's kubeconfig inside the node, for kubectl run there (no kubectl on this host).
        self._node_kubeconfig = "/etc/kubernetes/admin.conf"
        self.records = records
        self._docker = docker_client()
        try:
            self.container = self._docker.containers.get(self.node)
        except Exception as exc:
            raise ClusterError(f"control-plane container {self.node!r} not found: {_first_line(exc)}") from None
        source = DockerLogSource(self.container)
        if skip_history:  # a reused cluster: this session's events start now
            source.skip_existing()
        self.audit = AuditLog(source, timeout=timeout)
        self._kubectl = shutil.which("kubectl")

    @classmethod
    def create(
        cls,
        *,
        name: str,
        config: KindConfig,
        workdir: Path,
        environment: Environment,
        timeout: float = 10.0,
        fingerprint: Fingerprint | None = None,
        records: Records | None = None,
    ) -> AuditedCluster:
        """Create the cluster (kind create cluster) with its own kubeconfig; delete it again if anything fails.

        The host record is written first, so a run killed mid-creation can be cleaned up by the next one."""
        workdir.mkdir(parents=True, exist_ok=True)
        if records is not None and fingerprint is not None:
            records.write(name, fingerprint)
        config_path = config.write(workdir / "kind-config.yaml")
        kubeconfig = workdir / "kubeconfig"
        argv = [
            environment.kind_binary, "create", "cluster", "--name", name, "--config", str(config_path),
            "--kubeconfig", str(kubeconfig), "--wait", CREATE_WAIT,
        ]  # fmt: skip
        if environment.image:
            argv += ["--image", environment.image]
        try:
            _commands.run(argv, timeout=CREATE_TIMEOUT)
            cluster = cls(name, kind_binary=environment.kind_binary, kubeconfig=kubeconfig,
                          environment=environment, timeout=timeout, records=records)  # fmt: skip
            if fingerprint is not None:
                write_fingerprint(cluster.container, fingerprint)
            cluster.wait_for_audit_log()
        except BaseException as exc:  # also KeyboardInterrupt: never leak a half-made cluster
            delete_cluster(environment.kind_binary, name, kubeconfig)
            if records is not None:
                records.remove(name)
            if isinstance(exc, CommandError):
                raise ClusterError(
                    f"kind create cluster {name!r} failed: {_last_lines(exc.stderr)}\n"
                    "a bad audit policy makes the API server crash-loop; rerun with "
                    "--kind-audit-keep-cluster and see `kind export logs`"
                ) from None
            raise
        return cluster

    @classmethod
    def attach(
        cls,
        *,
        name: str,
        workdir: Path,
        environment: Environment,
        timeout: float = 10.0,
        skip_history: bool = False,
        records: Records | None = None,
    ) -> AuditedCluster:
        """Use a running cluster: export its kubeconfig to ``workdir`` (never ~/.kube/config)."""
        workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = workdir / f"kubeconfig-{os.getpid()}"
        try:
            _commands.run([environment.kind_binary, "export", "kubeconfig", "--name", name,
                           "--kubeconfig", str(kubeconfig)], timeout=60)  # fmt: skip
        except CommandError as exc:
            raise ClusterError(f"cannot use cluster {name!r}: {_last_lines(exc.stderr, 2)}") from None
        return cls(name, kind_binary=environment.kind_binary, kubeconfig=kubeconfig, environment=environment,
                   timeout=timeout, created=False, skip_history=skip_history, records=records)  # fmt: skip

    def use_identity(self, user: str, path: Path) -> None:
        """Act as ``user`` (a cluster admin, group system:masters) from now on: a client certificate made
        in the node, so this process's requests can be told apart in the audit log."""
        result = self.container.exec_run(
            ["kubeadm", "kubeconfig", "user", f"--client-name={user}", "--org=system:masters",
             "--config=/kind/kubeadm.conf"], stdout=True, stderr=False,
        )  # fmt: skip
        if result.exit_code != 0:
            raise ClusterError(f"could not make a client certificate for {user!r} in {self.node}")
        raw = _output(result.output)
        self._node_kubeconfig = put_node_file(self.container, f"kubeconfig-{user}", raw, 0o600)
        config = yaml.safe_load(raw)
        server = yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        for entry in config["clusters"]:
            entry["cluster"]["server"] = server  # the node's name resolves only on the Docker network
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        self.kubeconfig, self.identity = path, user
        self.identity_groups = ("system:masters", "system:authenticated")

    def wait_for_audit_log(self, timeout: float = 60.0) -> None:
        """Auditing is on once the log holds an event; an existing empty file proves nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.audit.poll() or len(self.audit):
                return
            time.sleep(0.5)
        raise ClusterError(f"the API server of {self.name!r} wrote no audit event to {AUDIT_LOG_PATH} in {timeout}s")

    def kubectl(self, *args: str, input: str | bytes | None = None, check: bool = True, timeout: float = 120) -> str:
        """Run kubectl against this cluster (its own kubeconfig; ~/.kube/config is never touched)."""
        if self._kubectl:
            # Its own discovery cache too: nothing under ~/.kube is read or written.
            cache = str(self.kubeconfig.parent / "kubectl-cache")
            argv = [self._kubectl, "--kubeconfig", str(self.kubeconfig), "--cache-dir", cache, *args]
        else:  # no kubectl here: use the one inside the node, with the same admin identity
            argv = ["docker", "exec", "-i", self.node, "kubectl",
                    "--kubeconfig", self._node_kubeconfig, *args]  # fmt: skip
        return _commands.run(argv, input=input, timeout=timeout, check=check).stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    @property
    def kubernetes_version(self) -> str:
        """The API server's version, e.g. ``v1.34.4``."""
        data: Mapping[str, Any] = self.kubectl_json("version")
        return str(data["serverVersion"]["gitVersion"])

    def exec_in_node(self, *argv: str) -> str:
        """Run a command in the control-plane container (diagnostics)."""
        result = self._docker.containers.get(self.node).exec_run(list(argv))
        return _output(result.output).decode(errors="replace")

    def delete(self) -> None:
        delete_cluster(self.kind_binary, self.name, self.kubeconfig)
        if self.records is not None:
            self.records.remove(self.name)

    def __repr__(self) -> str:
        return f"AuditedCluster(name={self.name!r}, events={len(self.audit)})"


def delete_cluster(kind_binary: str, name: str, kubeconfig: Path | None = None) -> None:
    """kind delete cluster, always with an explicit kubeconfig: without one kind edits ~/.kube/config."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kind-audit-") as scratch:
        path = kubeconfig if kubeconfig is not None else Path(scratch) / "kubeconfig"
        _commands.run([kind_binary, "delete", "cluster", "--name", name, "--kubeconfig", str(path)],
                      timeout=300, check=False)  # fmt: skip


def reap_stale(kind_binary: str, records: Records) -> dict[str, str]:
    """Delete the clusters interrupted runs of this plugin left behind; return name -> why."""
    stale = stale_clusters(docker_client(), records)
    for name in stale:
        delete_cluster(kind_binary, name)
        records.remove(name)
    return stale


def _last_lines(text: str, n: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-n:])

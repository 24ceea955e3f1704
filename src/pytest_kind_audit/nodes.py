"""The one module that talks to Docker (with engine.py, its few calls without the SDK): the client, a
cluster's node containers, files in a node or an image, the audit log read from inside the control-plane
node, and thawing a node's frozen cgroups.

Nothing else imports the Docker SDK, and only when a call needs it (importing it costs ~0.2 s). Commands
inside a node get their paths as arguments, never pasted into a shell string.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .engine import Engine, EngineError
from .exceptions import ClusterError, EnvironmentNotReady, LogStreamBroken
from .follow import LogFollower
from .kindconfig import AUDIT_LOG_PATH

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    # For the other modules' annotations: they never import the Docker SDK themselves.
    DockerClient = docker.DockerClient
    NodeContainer = Container

__all__ = [
    "DockerLogSource",
    "LogStreamBroken",
    "Node",
    "NodeShell",
    "ShellFiles",
    "cluster_containers",
    "control_plane",
    "control_plane_name",
    "control_planes",
    "docker_client",
    "exec_output",
    "inspect_node",
    "node_exists",
    "read_file",
    "read_image_file",
    "thaw_frozen_cgroups",
    "write_file",
]

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
#: Where a node keeps the plugin's own files (fingerprint, per-worker kubeconfigs).
NODE_DIR = "/kind-audit"


_clients: dict[tuple[int, int, str, str, str], docker.DockerClient] = {}
_pinged: dict[tuple[int, str], _LazyClient] = {}


def docker_client() -> docker.DockerClient:
    """This process's Docker SDK client for the current DOCKER_* settings (checked with a ping when made),
    or EnvironmentNotReady naming the fix. Kept: each new client costs a connection and a ping.

    With a local socket the ping goes through the Engine API and the SDK is imported only when something
    uses the client: this module's look-ups that a run makes every time go through the Engine API."""
    engine = Engine.from_env()
    if engine is None:
        return _sdk_client()
    key = (os.getpid(), os.environ.get("DOCKER_HOST", ""))
    if key not in _pinged:
        try:
            engine.ping()
        except (EngineError, ValueError) as exc:
            raise EnvironmentNotReady(
                f"Docker is not reachable ({first_line(exc)}): start the Docker daemon, or set DOCKER_HOST"
            ) from None
        _pinged[key] = _LazyClient()
    return cast("docker.DockerClient", _pinged[key])


class _LazyClient:
    """Stands in for the SDK's client: the SDK is imported on first use of any attribute."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(_sdk_client(), attr)


def _sdk_client() -> docker.DockerClient:
    import docker
    from docker.errors import DockerException

    env = os.environ
    # The SDK module's identity too: an in-process pytester run drops modules it imported, and a client of
    # the dropped module raises exceptions that the re-imported module's classes do not catch.
    key = (os.getpid(), id(docker), env.get("DOCKER_HOST", ""), env.get("DOCKER_TLS_VERIFY", ""),
           env.get("DOCKER_CERT_PATH", ""))  # fmt: skip
    if key not in _clients:
        try:
            client = docker.from_env(timeout=60)
            client.ping()
        except DockerException as exc:
            raise EnvironmentNotReady(
                f"Docker is not reachable ({first_line(exc)}): start the Docker daemon, or set DOCKER_HOST"
            ) from None
        _clients[key] = client
    return _clients[key]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def control_plane_name(cluster: str) -> str:
    """kind names a single control-plane node ``<cluster>-control-plane``."""
    return f"{cluster}-control-plane"


def control_plane(client: docker.DockerClient, cluster: str) -> Container | None:
    """The control-plane container of ``cluster`` (any state), or None."""
    return _container(client, control_plane_name(cluster))


def _container(client: docker.DockerClient, name: str) -> Container | None:
    engine = Engine.from_env()
    if engine is not None:
        attrs = engine.inspect(name)
        return _as_container(Node(attrs)) if attrs is not None else None
    from docker.errors import NotFound

    try:
        return client.containers.get(name)
    except NotFound:
        return None


class Node:
    """A node container known from the Engine API's inspect (``attrs``, ``id``, ``name``, ``labels``),
    without the Docker SDK. Anything else (``exec_run``, ``get_archive``, ``put_archive``, ``client``, ...)
    is the SDK's Container for it, fetched on first use: where a Container is expected, a Node does."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.id: str = attrs["Id"]
        self.name: str = str(attrs.get("Name", "")).lstrip("/")
        self._container: Container | None = None

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> Node:
        """A container of ``docker ps``'s list, its fields where ``docker inspect`` has them."""
        state = str(summary.get("State", ""))
        ports: dict[str, list[dict[str, str]]] = {}
        for port in summary.get("Ports") or []:
            if port.get("PublicPort"):
                ports.setdefault(f"{port['PrivatePort']}/{port.get('Type', 'tcp')}", []).append(
                    {"HostIp": port.get("IP", ""), "HostPort": str(port["PublicPort"])}
                )
        names = summary.get("Names") or [""]
        running = {"Status": state, "Running": state == "running", "Paused": state == "paused"}
        return cls({"Id": summary["Id"], "Name": names[0], "Config": {"Labels": summary.get("Labels") or {}},
                    "Mounts": summary.get("Mounts") or [], "NetworkSettings": {"Ports": ports},
                    "State": running})  # fmt: skip

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):  # never for the handle's own state (copy, pickle)
            raise AttributeError(attr)
        if self._container is None:
            self._container = docker_client().containers.get(self.id)
        return getattr(self._container, attr)


def node_exists(name: str) -> bool:
    """Whether a container of that name exists (False when Docker is not reachable)."""
    engine = Engine.from_env()
    try:
        if engine is not None:
            return engine.inspect(name) is not None
        return _container(docker_client(), name) is not None
    except Exception:
        return False


def inspect_node(name: str) -> Node | None:
    """A node container by name through the Engine API (no SDK import), or None when there is none, when
    Docker is not a local socket, or does not answer (the SDK's path then says why)."""
    engine = Engine.from_env()
    if engine is None:
        return None
    try:
        attrs = engine.inspect(name)
    except (EngineError, ValueError):
        return None
    return Node(attrs) if attrs is not None else None


def cluster_containers(client: docker.DockerClient, cluster: str) -> list[Container]:
    """Every node container of a kind cluster, in any state, by kind's cluster label."""
    return _labelled(client, f"{CLUSTER_LABEL}={cluster}")


def control_planes(client: docker.DockerClient) -> dict[str, Container]:
    """Every kind cluster's control-plane container on this Docker host, by cluster name."""
    return {c.labels.get(CLUSTER_LABEL, ""): c for c in _labelled(client, f"{ROLE_LABEL}=control-plane")}


def _labelled(client: docker.DockerClient, label: str) -> list[Container]:
    engine = Engine.from_env()
    if engine is not None:  # one call; the list holds every field used here (labels, mounts, state)
        return [_as_container(Node.from_summary(c)) for c in engine.containers(label)]
    return list(client.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def _as_container(node: Node) -> Container:
    # A Node answers id, name, labels and attrs itself and hands anything else to the SDK's Container.
    return cast("Container", node)


def name_of(container: Container) -> str:
    return container.name or container.short_id


def bind_sources(container: Container | Node) -> list[str]:
    """The host paths bind-mounted into a container (fixed at creation, visible in ``docker inspect``)."""
    return [m.get("Source", "") for m in container.attrs.get("Mounts") or [] if m.get("Type") == "bind"]


def exec_output(container: Container, argv: list[str]) -> tuple[int, bytes]:
    """Run ``argv`` in a node; its exit code and standard output."""
    result = container.exec_run(argv, stdout=True, stderr=False)
    return result.exit_code or 0, _joined(result.output)


def _joined(output: bytes | Iterator[bytes] | None) -> bytes:
    # exec_run returns bytes unless streaming was asked for.
    if output is None:
        return b""
    return output if isinstance(output, bytes) else b"".join(output)


def read_file(container: Container, path: str) -> bytes | None:
    """A file's bytes, read as an archive (works on a stopped or half-made container too); None if absent."""
    engine = Engine.from_env()
    if engine is not None:
        try:
            archive = engine.get_archive(container.id or "", path)
        except (EngineError, ValueError):
            return None
        return _first_file(archive) if archive is not None else None
    from docker.errors import DockerException

    try:
        stream, _ = container.get_archive(path)
        return _first_file(b"".join(stream))
    except DockerException:
        return None


def _first_file(archive: bytes) -> bytes | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member else None
            return f.read() if f else None
    except tarfile.TarError:
        return None


def api_server_url(container: Container | Node) -> str | None:
    """The API server's address as this host reaches it: kind publishes the node's 6443 on a host port."""
    ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get("6443/tcp") or []
    if not bindings:
        return None
    host = bindings[0].get("HostIp") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"https://{host}:{bindings[0]['HostPort']}"


def write_file(container: Container, name: str, data: bytes, mode: int = 0o644) -> str:
    """Write ``data`` to ``/kind-audit/<name>`` in a node; return the path."""
    # One archive holding the directory and the file: one API call, no exec for a mkdir.
    buf, now, top = io.BytesIO(), int(time.time()), NODE_DIR.strip("/")
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(top)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, now
        tar.addfile(folder)
        info = tarfile.TarInfo(f"{top}/{name}")
        info.size, info.mtime, info.mode = len(data), now, mode
        tar.addfile(info, io.BytesIO(data))
    engine = Engine.from_env()
    if engine is not None:
        try:
            engine.put_archive(container.id or "", "/", buf.getvalue())
        except (EngineError, ValueError) as exc:
            raise ClusterError(f"could not write {NODE_DIR}/{name} in {container.name}: {exc}") from None
    elif not container.put_archive("/", buf.getvalue()):
        raise ClusterError(f"could not write {NODE_DIR}/{name} in {container.name}")
    return f"{NODE_DIR}/{name}"


def image_present(client: docker.DockerClient, image: str) -> bool:
    return image_id(client, image) is not None


def image_id(client: docker.DockerClient, image: str) -> str | None:
    """A local image's id, or None when it is not here."""
    engine = Engine.from_env()
    if engine is not None:
        return engine.image_id(image)
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(image).id)
    except ImageNotFound:
        return None


def image_id_of(client: docker.DockerClient, image: str) -> str:
    found = image_id(client, image)
    if found is None:
        raise EnvironmentNotReady(f"node image {image!r} is not present")
    return found


def remove_containers(containers: list[Container], timeout: float) -> None:
    """``docker rm -f`` each container, within ``timeout``; failures are left for the caller to see."""
    from docker.errors import DockerException

    deadline = time.monotonic() + timeout
    for container in containers:
        if time.monotonic() >= deadline:
            return
        try:
            container.remove(force=True, v=True)
        except DockerException:
            pass  # the caller looks again: what is left is reported


def read_image_file(client: docker.DockerClient, image: str, path: str) -> bytes | None:
    """A file of an image, through a container that is created but never started."""
    container = client.containers.create(image, entrypoint=["true"])
    try:
        return read_file(container, path)
    finally:
        container.remove(force=True)


# One long-lived shell in the node serves every read: a read costs a round trip on an open socket and the
# one or two processes it starts in the node (a few ms), not a new docker exec (~80 ms). $1 is the log's
# path; the rotated files are <stem>-<time><ext>. Each answer ends with a NUL-framed marker, which JSON
# lines cannot contain. A failed redirection on a group is not fatal to sh, so a missing file answers "".
_READER = r"""
p=$1; case ${p##*/} in *.*) stem=${p%.*}; ext=.${p##*.};; *) stem=$p; ext=;; esac
while IFS= read -r line; do
  op=${line%% *}; rest=${line#* }
  case $op in
    cur) { stat -L -c '%i %s' /dev/fd/3 && tail -c +"$rest" <&3; } 3<"$p" ;;
    bak) for f in "$stem"-*"$ext"; do [ -e "$f" ] && stat -c '%i %n' "$f"; done ;;
    get) tail -c +"${rest%% *}" "${rest#* }" ;;
  esac 2>/dev/null
  printf '\0\0END\n'
done
"""
_END = b"\0\0END\n"
#: argv[0] of the reader in the node, to find it (and prove it is gone).
READER_NAME = "kind-audit-log-reader"

# Reader shells started ahead of their first read, by (container id, log path): a reused cluster's, started
# as soon as its node is known, so the ~0.1 s a new exec takes in the node passes while the run loads the rest.
_early_shells: dict[tuple[str, str], socket.socket] = {}


def start_reader_early(container_id: str, path: str = AUDIT_LOG_PATH, *, timeout: float = 3.0) -> None:
    """Start the reader shell of a node whose log this process will read: the first NodeShell of that node
    takes it. Local Docker socket only; any failure is left to the first read, which starts its own."""
    engine = Engine.from_env(timeout)
    if engine is None or (container_id, path) in _early_shells:
        return
    try:
        _early_shells[(container_id, path)] = engine.exec_stream(container_id, _reader_argv(path), timeout=timeout)
    except (EngineError, OSError, ValueError):
        pass


def _reader_argv(path: str) -> list[str]:
    return ["sh", "-c", _READER, READER_NAME, path]


class NodeShell:
    """The reader shell in a node, over one exec's socket. Started on first use, started again once if
    it died (offsets are kept by the caller, so nothing is lost or read twice); LogStreamBroken, naming
    the node's state, when that fails too. Ends when closed, or with this process or the node."""

    def __init__(self, container: Container, path: str, *, timeout: float = 3.0) -> None:
        self.container = container
        self.path = path
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._sdk_socket: Any = None  # the SDK's wrapper of the socket, when the SDK started the reader
        #: How many times the reader was started (1 for a healthy stream).
        self.starts = 0
        #: Whether the first reader was one started ahead of the first read (start_reader_early).
        self.started_early = False

    def _start(self) -> None:
        argv = _reader_argv(self.path)
        early = _early_shells.pop((self.container.id or "", self.path), None)
        engine = Engine.from_env(self.timeout)  # a daemon that hangs must not hang the assert
        if early is not None:  # a dead one fails the first exchange, and ask() starts a new one
            early.settimeout(self.timeout)
            self._socket, self.started_early = early, True
        elif engine is not None:  # the local socket, without importing the SDK
            self._socket = engine.exec_stream(self.container.id or "", argv, timeout=self.timeout)
        else:
            api = self.container.client.api  # type: ignore[union-attr]
            exec_id = api.exec_create(self.container.id, argv, stdin=True, stdout=True, stderr=False,
                                      tty=False)["Id"]  # fmt: skip
            self._sdk_socket = api.exec_start(exec_id, socket=True)
            self._socket = sdk_stream_socket(self._sdk_socket)
            self._socket.settimeout(self.timeout)
        self.starts += 1

    def ask(self, line: str) -> bytes:
        """Send one command line; its answer, without the end marker."""
        for attempt in (1, 2):
            try:
                if self._socket is None:
                    self._start()
                return self._exchange(line)
            except Exception as exc:  # a dead socket, a timeout, Docker gone: once more, then explain
                self.close()
                if attempt == 2:
                    raise LogStreamBroken(f"the audit log stream of {name_of(self.container)} is gone: "
                                          f"{self._why(exc)}") from None  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, line: str) -> bytes:
        sock = self._socket
        assert sock is not None
        sock.sendall(line.encode() + b"\n")
        out = bytearray()
        while not out.endswith(_END):
            header = _read_exactly(sock, 8)
            size = int.from_bytes(header[4:8], "big")
            out += _read_exactly(sock, size)
        return bytes(out[: -len(_END)])

    def _why(self, exc: BaseException) -> str:
        try:
            state = _node_state(self.container, self.timeout)
        except Exception as inner:
            return f"Docker does not answer ({first_line(inner)})"
        if state.get("Paused"):
            return "the node container is paused"
        if state.get("Status") == "removed":
            return "the node container was removed"
        if not state.get("Running"):
            return f"the node container is {state.get('Status', 'not running')} (exit code {state.get('ExitCode')})"
        return f"the reader in the node failed: {first_line(exc)}"

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)  # EOF on the shell's input: it exits
            except OSError:
                pass  # already gone
            self._socket.close()
            self._socket = None
        if self._sdk_socket is not None:
            self._sdk_socket.close()
            self._sdk_socket = None


def sdk_stream_socket(stream: Any) -> Any:
    """The socket to talk on under what the SDK's ``exec_start(socket=True)`` returns: that is a SocketIO
    around the socket over plain TCP or a Unix socket, but over TLS the SSL socket itself (which has no
    ``_sock``: the TLS layer must not be skipped)."""
    return getattr(stream, "_sock", stream)


def _node_state(container: Container, timeout: float) -> dict[str, Any]:
    """The container's State as Docker has it now (the Engine API, else the SDK)."""
    engine = Engine.from_env(timeout)
    if engine is not None:
        attrs = engine.inspect(container.id or "")
        if attrs is None:
            return {"Status": "removed"}
    else:
        from docker.errors import NotFound

        try:
            container.reload()
        except NotFound:  # as the Engine API's 404 above: gone, not "Docker does not answer"
            return {"Status": "removed"}
        attrs = container.attrs
    return dict(attrs.get("State") or {})


def _read_exactly(sock: Any, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the node closed the stream")
        data += chunk
    return bytes(data)


class ShellFiles:
    """The audit log's files inside the control-plane container, read through the node's reader shell:
    only the bytes from an offset on cross the wire, never the whole file."""

    def __init__(self, container: Container, path: str = AUDIT_LOG_PATH) -> None:
        self.shell = NodeShell(container, path)

    def read_current(self, offset: int) -> tuple[int | None, int, bytes]:
        # One open file gives both the inode and the bytes, so a rotation between two reads cannot mix files.
        out = self.shell.ask(f"cur {offset + 1}")
        if b"\n" not in out:
            return None, 0, b""  # not created yet
        head, _, data = out.partition(b"\n")
        inode, size = head.split()
        return int(inode), int(size), data

    def backups(self) -> list[tuple[int, str]]:
        rows = [line.split(" ", 1) for line in self.shell.ask("bak").decode().splitlines() if " " in line]
        return sorted(((int(ino), name) for ino, name in rows), key=lambda row: row[1])

    def read_path(self, path: str, offset: int) -> bytes:
        return self.shell.ask(f"get {offset + 1} {path}")


class DockerLogSource(LogFollower):
    """The audit log inside a kind node, followed across rotations through one long-lived reader."""

    def __init__(self, container: Container, path: str = AUDIT_LOG_PATH) -> None:
        self._files = ShellFiles(container, path)
        super().__init__(self._files)

    @property
    def starts(self) -> int:
        """How many times the reader in the node was started (more than 1: it died and was replaced)."""
        return self._files.shell.starts

    @property
    def started_early(self) -> bool:
        """Whether the reader was started before the first read (a reused cluster's: start_reader_early)."""
        return self._files.shell.started_early

    def close(self) -> None:
        """Stop the reader in the node."""
        self._files.shell.close()


# The host's cgroup v1 freezer hierarchy; Docker's cgroupfs driver puts a container under docker/<id>,
# the systemd driver under system.slice/docker-<id>.scope.
FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
_THAW_IN_NODE = (
    "find /sys/fs/cgroup/freezer -name freezer.state 2>/dev/null | while read -r f; do "
    'case "$(cat "$f")" in FROZEN|FREEZING) echo THAWED > "$f" && echo "$f";; esac; done; true'
)


def thaw_frozen_cgroups(container: Container) -> int:
    """Thaw every FROZEN or FREEZING cgroup v1 freezer under a node container (a pod sandbox left frozen
    keeps a process in uninterruptible sleep, and then Docker cannot kill the node). Return how many.

    From the host where its cgroup tree is visible and writable; else from inside the node."""
    thawed = 0
    cid = container.id or ""
    for base in (FREEZER_ROOT / "docker" / cid, FREEZER_ROOT / "system.slice" / f"docker-{cid}.scope"):
        if not cid:
            break
        if not base.is_dir():
            continue
        for state in base.rglob("freezer.state"):
            try:
                if state.read_text().strip() in ("FROZEN", "FREEZING"):
                    state.write_text("THAWED")
                    thawed += 1
            except OSError:
                continue
        return thawed
    try:
        code, out = exec_output(container, ["sh", "-c", _THAW_IN_NODE])
    except Exception:  # a node that cannot run a command has nothing we can thaw from here
        return 0
    return len(out.splitlines()) if code == 0 else 0

"""A kind cluster with API auditing: create, use, read its audit log, delete. No pytest here.

Usable from a script::

    env = check_environment("kind", "kind-audit-ci/node:v1.34.4-3")
    workdir = Path("/tmp/demo")
    policy = AuditPolicy.for_level("Metadata")
    config = KindConfig.build(policy_file=workdir / "audit-policy.yaml", kind_version=env.kind_version,
                              kubernetes_version=env.kubernetes_version, cgroup_v1_host=env.cgroup_v1_host)
    cluster = AuditedCluster.create(name="demo", config=config, policy=policy, workdir=workdir, environment=env)
    try:
        cluster.kubectl("create", "namespace", "demo")
        cluster.audit.assert_audited(verb="create", resource="namespaces", name="demo")
    finally:
        cluster.delete()
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from . import _commands, images
from .asserts import current_window
from .authorizer import Verification, check_least_privilege, live_rbac, verify_rbac
from .deletion import Deletion, delete_cluster
from .environment import Environment, check_pod_network
from .events import AuditEvent
from .exceptions import ClusterError, CommandError, KindAuditError, NoAuditWindow
from .identities import HOUSEKEEPING_USER, TOKEN_SECONDS, Housekeeper, Identity, make_service_account, user_groups
from .kindconfig import AUDIT_LOG_PATH, KindConfig
from .leastprivilege import RbacPlan, SubjectRbac, derive_rbac
from .log import AuditLog, AuditWindow
from .nodes import (
    DockerLogSource,
    api_server_url,
    cluster_containers,
    control_plane,
    control_plane_name,
    docker_client,
    exec_output,
    inspect_node,
    read_file,
    write_file,
)
from .ownership import FINGERPRINT_PATH, Fingerprint, Records, write_fingerprint_file
from .private_files import write_private

if TYPE_CHECKING:
    from .nodes import NodeContainer
    from .policy import AuditPolicy

__all__ = ["WORKER_USER_PREFIX", "AuditedCluster"]

ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
#: The user of kind's admin.conf, and its groups (kubeadm:cluster-admins since Kubernetes 1.29).
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("kubeadm:cluster-admins", "system:authenticated")
CREATE_TIMEOUT = 600.0
#: Prefix of the per-worker identities under xdist (see AuditedCluster.use_identity).
WORKER_USER_PREFIX = "kind-audit-worker-"


class AuditedCluster:
    """A running kind cluster whose API server writes an audit log; ``audit`` is the session's events."""

    def __init__(
        self,
        name: str,
        *,
        kind_binary: str,
        kubeconfig: Path,
        policy: AuditPolicy | None = None,
        timeout: float = 10.0,
        created: bool = True,
        records: Records | None = None,
        skip_history: bool = False,
        container: NodeContainer | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.name = name
        self.kind_binary = kind_binary
        self.kubeconfig = kubeconfig
        #: True when this process created the cluster, False when it attached to an existing one.
        self.created = created
        self.node = control_plane_name(name)
        #: The user name this process's kubectl acts as.
        self.identity = ADMIN_USER
        #: Its groups.
        self.identity_groups: tuple[str, ...] = ADMIN_GROUPS
        # The same identity's kubeconfig inside the node, for kubectl run there (no kubectl on this host).
        self._node_kubeconfig = ADMIN_KUBECONFIG
        self.records = records
        container = container or control_plane(docker_client(), name)
        if container is None:
            raise ClusterError(f"control-plane container {self.node!r} not found")
        self.container = container
        if audit is not None:  # followed since the node started (_LogDuringCreation)
            self.audit = audit
            self.audit.identity = self._identity()
        else:
            source = DockerLogSource(container)
            if skip_history:  # a reused cluster: this session's events start now
                source.skip_existing()
            self.audit = AuditLog(source, timeout=timeout, policy=policy, identity=self._identity())
        self._kubectl = shutil.which("kubectl")
        self._housekeeper: Housekeeper | None = None

    def _identity(self) -> tuple[str, tuple[str, ...]]:
        return self.identity, self.identity_groups

    @classmethod
    def create(
        cls,
        *,
        name: str,
        config: KindConfig,
        policy: AuditPolicy,
        workdir: Path,
        environment: Environment,
        timeout: float = 10.0,
        fingerprint: Fingerprint | None = None,
        records: Records | None = None,
    ) -> AuditedCluster:
        """Create the cluster (kind create cluster) with its own kubeconfig; delete it again if anything fails.

        Refused when the policy is one this Kubernetes version refuses, when a cluster of that name exists
        (it is somebody else's), or when the config asks for workers the node image has no pod network for.
        The host record is written first, so a run killed mid-creation can be cleaned up by the next one;
        the policy file in ``workdir`` is bind-mounted into every node, which proves later whose node it is.
        Handed out once the API server writes audit events, without kind's ``--wait`` for Ready nodes: a test
        that talks to the API starts seconds earlier, a pod waits for its node as it would anyway (kind's own
        default); ``wait_for_nodes`` waits for every node."""
        policy = policy.for_kubernetes(environment.kubernetes_version)
        check_pod_network(config, environment)
        if cluster_containers(docker_client(), name):
            raise ClusterError(
                f"a kind cluster named {name!r} already exists and was left alone: pass "
                "--kind-audit-reuse-cluster to use it (if this plugin made it), or pick another "
                "--kind-audit-cluster-name"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        if records is not None and fingerprint is not None:
            records.write(name, fingerprint)
        policy.write(config.policy_path)
        if fingerprint is not None:  # in the node from its start, through a bind mount: nothing to write later
            config = config.with_control_plane_file(write_fingerprint_file(workdir, fingerprint), FINGERPRINT_PATH)
        config_path = config.write(workdir / "kind-config.yaml")
        kubeconfig = workdir / "kubeconfig"
        argv = [
            environment.kind_binary, "create", "cluster", "--name", name, "--config", str(config_path),
            "--kubeconfig", str(kubeconfig),
        ]  # fmt: skip
        if environment.image:
            argv += ["--image", environment.image]
        early = _LogDuringCreation(name, policy=policy, timeout=timeout)
        cluster: AuditedCluster | None = None
        try:
            _commands.run(argv, timeout=CREATE_TIMEOUT, while_waiting=early.step)
            cluster = cls(name, kind_binary=environment.kind_binary, kubeconfig=kubeconfig, policy=policy,
                          timeout=timeout, records=records, container=early.container, audit=early.audit)  # fmt: skip
            cluster.wait_for_audit_log()
        except BaseException as exc:  # also KeyboardInterrupt: never leak a half-made cluster
            early.close()
            if cluster is not None:
                cluster.close()
            deletion = delete_cluster(environment.kind_binary, name, kubeconfig, made_in=workdir)
            if records is not None and deletion.deleted:
                records.remove(name)
            left = "" if deletion.deleted else f"\nthe half-made cluster was {deletion.describe()}"
            if isinstance(exc, CommandError):
                raise ClusterError(
                    f"kind create cluster {name!r} failed: {_last_lines(exc.stderr)}\n"
                    "a bad audit policy makes the API server crash-loop; rerun with "
                    f"--kind-audit-keep-cluster and see `kind export logs`{left}"
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
        policy: AuditPolicy | None = None,
        timeout: float = 10.0,
        skip_history: bool = False,
        records: Records | None = None,
    ) -> AuditedCluster:
        """Use a running cluster: its admin kubeconfig, read from the node and pointed at the host port kind
        published (what ``kind export kubeconfig`` does, without starting kind), written to ``workdir``
        (never ~/.kube/config)."""
        if policy is not None:
            policy = policy.for_kubernetes(environment.kubernetes_version)
        container = control_plane(docker_client(), name)
        raw = read_file(container, ADMIN_KUBECONFIG) if container is not None else None
        server = api_server_url(container) if container is not None else None
        if raw is None or server is None:
            raise ClusterError(f"cannot use cluster {name!r}: no running control-plane node with an API server port")
        workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = workdir / f"kubeconfig-{os.getpid()}"
        _write_kubeconfig(kubeconfig, raw, server)
        return cls(name, kind_binary=environment.kind_binary, kubeconfig=kubeconfig, policy=policy, timeout=timeout,
                   created=False, skip_history=skip_history, records=records, container=container)  # fmt: skip

    def use_identity(self, user: str, path: Path) -> None:
        """Act as ``user`` (a cluster admin, group system:masters) from now on: a client certificate made
        in the node, so this process's requests can be told apart in the audit log."""
        raw = self._client_certificate(user, ("system:masters",))
        self._node_kubeconfig = write_file(self.container, f"kubeconfig-{user}", raw, 0o600)
        _write_kubeconfig(path, raw, self._server())
        self.kubeconfig, self.identity = path, user
        self.identity_groups = ("system:masters", "system:authenticated")
        self.audit.identity = self._identity()

    def _client_certificate(self, user: str, groups: Sequence[str]) -> bytes:
        """A kubeconfig for ``user`` in ``groups`` with a client certificate signed by the cluster's CA."""
        orgs = [f"--org={g}" for g in groups]
        code, raw = exec_output(self.container, ["kubeadm", "kubeconfig", "user", f"--client-name={user}",
                                                 *orgs, "--config=/kind/kubeadm.conf"])  # fmt: skip
        if code != 0:
            raise ClusterError(f"could not make a client certificate for {user!r} in {self.node}")
        return raw

    def _api_server(self) -> dict[str, Any]:
        """This host's address of the API server and its CA, from this process's kubeconfig."""
        return dict(yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"])

    def _server(self) -> str:
        # The node's name in node-made kubeconfigs resolves only on the Docker network: use this host's address.
        return str(self._api_server()["server"])

    @property
    def housekeeper(self) -> Housekeeper:
        """kubectl as the plugin's own admin identity, whose requests no window holds (identity setup,
        authorizer reviews)."""
        if self._housekeeper is None:
            path = self.kubeconfig.parent / f"kubeconfig-housekeeping-{os.getpid()}"
            _write_kubeconfig(path, self._client_certificate(HOUSEKEEPING_USER, ("system:masters",)), self._server())
            self._housekeeper = Housekeeper(path)
        return self._housekeeper

    def service_account(self, name: str | None = None, namespace: str = "default", *,
                        token_seconds: int = TOKEN_SECONDS) -> Identity:  # fmt: skip
        """A ServiceAccount identity (the account and its namespace created if missing; default name unique
        per call, so xdist workers never share one) with a kubeconfig holding a short-lived TokenRequest token.
        It may do nothing beyond what every ServiceAccount may, until ``.bind()`` gives it roles."""
        config = self._api_server()
        return make_service_account(self.housekeeper, config["server"], config["certificate-authority-data"],
                                    self.kubeconfig.parent, name, namespace, token_seconds)  # fmt: skip

    def user_account(self, name: str | None = None, groups: Sequence[str] = ()) -> Identity:
        """A plain user in ``groups`` (never system:masters) by client certificate; default name unique per call."""
        name = name or f"kind-audit-user-{secrets.token_hex(4)}"
        groups = user_groups(groups)
        raw = self._client_certificate(name, groups[:-1])
        path = self.kubeconfig.parent / f"kubeconfig-user-{name}".replace("/", "-")
        _write_kubeconfig(path, raw, self._server())
        return Identity(name, groups, path, self.housekeeper)

    def least_privilege(self, users: str | Sequence[str], events: Iterable[AuditEvent] | None = None) -> RbacPlan:
        """The smallest RBAC allowing what ``users`` did in ``events`` (default: the current test's window, or the
        session outside a test), leaving out what their groups are granted in this cluster now."""
        return derive_rbac(self._observed(events), users, existing=live_rbac(self.housekeeper))

    def verify_rbac(self, subject: SubjectRbac, *, timeout: float = 30.0) -> Verification:
        """Ask the authorizer whether ``subject``'s derived rules allow all it did, and each rule is needed."""
        return verify_rbac(self.housekeeper, subject, timeout=timeout)

    def assert_least_privilege(
        self,
        subject: Identity | str,
        roles: Iterable[Mapping[str, Any] | str | Path] | None = None,
        *,
        events: Iterable[AuditEvent] | None = None,
        allow_unused: Iterable[str] = (),
    ) -> None:
        """Fail naming every granted verb ``subject`` never used (``roles`` given as manifests, or what is bound
        to it now) and every request of it the authorizer denied; ``allow_unused`` excuses "VERB RESOURCE"."""
        __tracebackhide__ = True
        user, groups = (subject, ()) if isinstance(subject, str) else (subject.user, subject.groups)
        report = check_least_privilege(self.housekeeper, self._observed(events), user, groups, roles,
                                       allow_unused=allow_unused)  # fmt: skip
        if not report.ok:
            raise AssertionError(report.message())

    def _observed(self, events: Iterable[AuditEvent] | None) -> Iterable[AuditEvent]:
        if events is not None:
            # a window, the session log or a namespace view: their events after a poll; else as given
            all_events = getattr(events, "all", None)
            return all_events() if callable(all_events) else events
        try:
            return current_window().all()
        except NoAuditWindow:
            return self.audit.all()

    def window(self, *, label: str = "window", start: datetime | None = None, verbosity: int = 0) -> AuditWindow:
        """The events of requests received from ``start`` (default: now) on. Under xdist each worker acts as
        its own user, so the other workers' requests are left out: a window holds this process's test."""
        return self.audit.window(start, label=label, foreign=self._foreign(), verbosity=verbosity)

    def _foreign(self) -> Callable[[AuditEvent], bool]:
        own = self.identity
        if not own.startswith(WORKER_USER_PREFIX):
            return _housekeeping
        return lambda e: (
            e.user.username == HOUSEKEEPING_USER
            or (e.user.username.startswith(WORKER_USER_PREFIX) and e.user.username != own)
        )

    def wait_for_audit_log(self, timeout: float = 60.0) -> None:
        """Auditing is on once the log holds an event; an existing empty file proves nothing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.audit.poll() or len(self.audit):
                return
            time.sleep(0.05)
        raise ClusterError(f"the API server of {self.name!r} wrote no audit event to {AUDIT_LOG_PATH} in {timeout}s")

    def wait_for_nodes(self, count: int | None = None, timeout: float = 120.0) -> None:
        """Wait until ``count`` nodes (by default every node container of the cluster) are registered and all
        are Ready, i.e. pods can be scheduled on each; ClusterError naming those that are not, with their Ready
        condition's message, after ``timeout`` seconds.

        Creation does not wait for this (kind's own default): the cluster is handed out once its API server
        audits, and the pod network comes up while the first tests run."""
        if count is None:
            count = len(cluster_containers(docker_client(), self.name))
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = self.kubectl("get", "nodes", "-o", "json", timeout=max(5.0, deadline - time.monotonic()))
                waiting = not_ready(json.loads(answer), count)
            except CommandError as exc:  # the API server may still settle: ask again
                waiting = {"kubectl get nodes": _last_lines(exc.stderr, 1) or f"exit code {exc.returncode}"}
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        if waiting:
            states = "; ".join(f"{node}: {message}" for node, message in waiting.items())
            raise ClusterError(f"the nodes of {self.name!r} were not all Ready within {timeout:.0f}s: {states}")

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

    def load_image(self, image: str) -> str:
        """Put ``image`` from this host's Docker into every node (``kind load docker-image``, with this cluster's
        kind) and return the reference for a pod spec. Build or pull it on this host first: a missing image is
        an ImageLoadError naming the fix, before kind runs; so is a failed load, with kind's last error line.

        A loaded image is in the nodes only, no registry has it: the pod's ``imagePullPolicy`` must be
        ``IfNotPresent`` or ``Never``. That is the default for a tagged reference (``my-app:dev``), but a
        ``:latest`` or untagged one defaults to ``Always`` and the kubelet would try to pull it: set the policy,
        or tag the image."""
        return images.load_image(self.kind_binary, self.name, image)

    def exec_in_node(self, *argv: str) -> str:
        """Run a command in the control-plane container (diagnostics)."""
        return exec_output(self.container, list(argv))[1].decode(errors="replace")

    def close(self) -> None:
        """Stop following the audit log (the reader in the node ends); the cluster keeps running."""
        self.audit.close()

    def delete(self) -> Deletion:
        """Delete the cluster; the result says whether its containers are really gone."""
        self.close()
        deletion = delete_cluster(self.kind_binary, self.name, self.kubeconfig)
        if self.records is not None and deletion.deleted:
            self.records.remove(self.name)
        return deletion

    def __repr__(self) -> str:
        return f"AuditedCluster(name={self.name!r}, events={len(self.audit)})"


class _LogDuringCreation:
    """Follows the audit log while kind still creates the cluster: the reader starts once the control-plane
    container runs, and what the API server writes is read meanwhile, so no reader start-up and no backlog
    is left to wait for when kind returns. Same reader, same offsets afterwards: nothing read twice or
    missed. Only with a local Docker socket (inspect through the Engine API, a few ms a step)."""

    def __init__(self, name: str, *, policy: AuditPolicy, timeout: float) -> None:
        self.name, self.policy, self.timeout = name, policy, timeout
        self.container: NodeContainer | None = None
        self.audit: AuditLog | None = None

    def step(self) -> None:
        try:
            if self.audit is None:
                node = inspect_node(control_plane_name(self.name))
                if node is None or not (node.attrs.get("State") or {}).get("Running"):
                    return
                self.container = cast("NodeContainer", node)
                # Its identity is the cluster's, set when the cluster takes it over.
                self.audit = AuditLog(DockerLogSource(self.container), timeout=self.timeout, policy=self.policy)
            self.audit.poll()
        except KindAuditError:
            pass  # a node still starting: the reader starts again on the next poll, where it left off
        except Exception:  # anything else: drop this head start; the cluster then reads the log from byte 0
            self.close()
            self.container = self.audit = None

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()


def not_ready(nodes: Mapping[str, Any], count: int) -> dict[str, str]:
    """The nodes of a ``kubectl get nodes -o json`` answer that are not Ready, each with its Ready condition's
    message, and how many of ``count`` have not registered yet."""
    waiting: dict[str, str] = {}
    items = nodes.get("items") or []
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        if ready.get("status") != "True":
            status = f"Ready={ready['status']}" if ready.get("status") else "no Ready condition yet"
            waiting[item["metadata"]["name"]] = ready.get("message") or status
    if len(items) < count:
        waiting["not registered"] = f"{count - len(items)} of {count} nodes"
    return waiting


def _housekeeping(event: AuditEvent) -> bool:
    return event.user.username == HOUSEKEEPING_USER


def _write_kubeconfig(path: Path, raw: bytes, server: str) -> None:
    """Write a kubeconfig made in the node with every cluster's server set to ``server``. It holds a client
    key: mode 0600 from the first byte."""
    config = yaml.safe_load(raw)
    for entry in config["clusters"]:
        entry["cluster"]["server"] = server
    write_private(path, yaml.safe_dump(config))


def _last_lines(text: str, n: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-n:])

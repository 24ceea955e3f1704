"""The kind cluster config that turns API auditing on, merged into a config the user supplies.

The audit wiring follows kind's Auditing guide, adjusted for the versions we support:
* kind renders kubeadm v1beta3 (``extraArgs`` as a map) for Kubernetes < 1.36 and, from kind v0.32,
  v1beta4 (``extraArgs`` as a name/value list) for 1.36+; kind < v0.32 always renders v1beta3.
* Patches carry no ``apiVersion``: kind silently skips a patch whose apiVersion does not match.
* Mount paths are absolute: kind resolves relative ones against its own working directory.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PyYAML is imported where it is used: pytest loads this module with the plugin, and a run that makes no
# cluster never reads or writes YAML.
from .exceptions import ConfigError

__all__ = ["AUDIT_LOG_PATH", "POLICY_PATH", "KindConfig", "Version", "kubeadm_api", "parse_version"]

POLICY_DIR = "/etc/kubernetes/policies"
POLICY_PATH = f"{POLICY_DIR}/audit-policy.yaml"
LOG_DIR = "/var/log/kubernetes"
AUDIT_LOG_PATH = f"{LOG_DIR}/kube-apiserver-audit.log"
KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
#: The node roles kind knows.
ROLES = ("control-plane", "worker")

Version = tuple[int, int, int]
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version:
    """``v1.34.4`` / ``kind v0.30.0 go1.26 linux/amd64`` / ``1.36`` to a comparable tuple."""
    m = _VERSION.search(text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    return int(m[1]), int(m[2]), int(m[3] or 0)


def kubeadm_api(kind_version: Version, kubernetes_version: Version) -> str:
    """The kubeadm config API kind renders for this pair; ConfigError for a pair that cannot work."""
    if kubernetes_version < (1, 23, 0):
        raise ConfigError(f"Kubernetes v{_fmt(kubernetes_version)} is too old: auditing support needs 1.23+")
    if kubernetes_version >= (1, 36, 0):
        if kind_version >= (0, 32, 0):
            return "kubeadm.k8s.io/v1beta4"
        if kubernetes_version >= (1, 37, 0):
            raise ConfigError(
                f"kind v{_fmt(kind_version)} renders kubeadm v1beta3, which Kubernetes "
                f"v{_fmt(kubernetes_version)} refuses: use kind v0.32.0 or newer"
            )
    return "kubeadm.k8s.io/v1beta3"


def _fmt(v: Version) -> str:
    return ".".join(map(str, v))


@dataclass
class KindConfig:
    """A kind ``Cluster`` config as data, with the audit wiring merged in. ``write()`` gives kind a file."""

    data: dict[str, Any]
    policy_path: Path
    kubeadm_api: str
    apiserver_args: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        policy_file: str | Path,
        kind_version: Version,
        kubernetes_version: Version,
        base: Mapping[str, Any] | None = None,
        apiserver_args: Mapping[str, str] | None = None,
        cgroup_v1_host: bool = False,
    ) -> KindConfig:
        """Merge the audit wiring into ``base`` (a kind config as a dict; not modified)."""
        policy = Path(policy_file)
        if not policy.is_absolute():
            raise ConfigError(f"policy file {str(policy)!r} must be an absolute path (kind resolves relative ones)")
        api = kubeadm_api(kind_version, kubernetes_version)
        data = _check_base(copy.deepcopy(dict(base or {})))
        args = {"audit-log-path": AUDIT_LOG_PATH, "audit-policy-file": POLICY_PATH, **(apiserver_args or {})}
        node = _control_planes(data.setdefault("nodes", [{"role": "control-plane"}]))[0]
        _check_no_conflict(data, node)
        patches = [_cluster_patch(api, args)]
        if cgroup_v1_host and kubernetes_version >= (1, 35, 0):
            # Kubelet 1.35+ refuses cgroup v1 hosts unless told otherwise.
            patches.append("kind: KubeletConfiguration\nfailCgroupV1: false\n")
        node["kubeadmConfigPatches"] = [*(node.get("kubeadmConfigPatches") or []), *patches]
        for each in data["nodes"]:
            # On workers too: a bind mount from the run's directory proves whose node it is (ownership.made_by),
            # so deleting a half-made or finished cluster never takes, nor leaves, a node that is not its own.
            _mount_read_only(each, policy, POLICY_PATH)
        return cls(data=data, policy_path=policy, kubeadm_api=api, apiserver_args=args)

    @property
    def roles(self) -> tuple[str, ...]:
        """The nodes' roles, in the config's order."""
        return tuple(str(n.get("role", "control-plane")) for n in self.data.get("nodes") or ())

    @property
    def workers(self) -> int:
        """How many worker nodes the config asks for."""
        return self.roles.count("worker")

    @property
    def default_cni(self) -> bool:
        """Whether kind installs the node image's default CNI (networking.disableDefaultCNI not set)."""
        networking = self.data.get("networking")
        return not (isinstance(networking, Mapping) and networking.get("disableDefaultCNI"))

    @property
    def control_plane_image(self) -> str:
        """The control-plane node's own ``image:``, or "" (kind's ``--image``, else its default, applies)."""
        return str(_control_planes(self.data["nodes"])[0].get("image") or "")

    def with_control_plane_file(self, host_file: Path, container_path: str) -> KindConfig:
        """A copy whose control-plane node also has ``host_file`` bind-mounted read-only at ``container_path``:
        a file the node has from its first moment, no write into it after creation."""
        data = copy.deepcopy(self.data)
        _mount_read_only(_control_planes(data["nodes"])[0], host_file, container_path)
        return KindConfig(data=data, policy_path=self.policy_path, kubeadm_api=self.kubeadm_api,
                          apiserver_args=dict(self.apiserver_args))  # fmt: skip

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.data, sort_keys=False)

    def write(self, path: str | Path) -> Path:
        if not self.policy_path.is_file():
            # Docker would create a missing bind source as a directory, and the API server would crash-loop.
            raise ConfigError(f"the audit policy file {str(self.policy_path)!r} does not exist; write it first")
        p = Path(path).absolute()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_yaml())
        return p


def _mount_read_only(node: dict[str, Any], host_file: Path, container_path: str) -> None:
    """Add a read-only bind mount to a kind config node, after the user's own."""
    mount = {"hostPath": str(host_file), "containerPath": container_path, "readOnly": True}
    node["extraMounts"] = [*(node.get("extraMounts") or []), mount]


def _cluster_patch(api: str, args: Mapping[str, str]) -> str:
    import yaml

    volumes = [
        {"name": "audit-policies", "hostPath": POLICY_DIR, "mountPath": POLICY_DIR, "readOnly": True,
         "pathType": "DirectoryOrCreate"},
        {"name": "audit-logs", "hostPath": LOG_DIR, "mountPath": LOG_DIR, "readOnly": False,
         "pathType": "DirectoryOrCreate"},
    ]  # fmt: skip
    extra_args: Any
    if api == "kubeadm.k8s.io/v1beta4":
        extra_args = [{"name": k, "value": v} for k, v in args.items()]
    else:
        extra_args = dict(args)
    patch = {"kind": "ClusterConfiguration", "apiServer": {"extraArgs": extra_args, "extraVolumes": volumes}}
    return yaml.safe_dump(patch, sort_keys=False)


def _check_base(data: dict[str, Any]) -> dict[str, Any]:
    kind = data.setdefault("kind", "Cluster")
    api = data.setdefault("apiVersion", KIND_API_VERSION)
    if kind != "Cluster" or api != KIND_API_VERSION:
        raise ConfigError(f"the kind config must be kind: Cluster, apiVersion: {KIND_API_VERSION}; got {kind}, {api}")
    nodes = data.get("nodes")
    if nodes == []:  # kind's default, as for no nodes key: one control plane
        del data["nodes"]
        nodes = None
    if nodes is not None and (not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes)):
        raise ConfigError("the kind config's nodes must be a list of mappings")
    for i, node in enumerate(nodes or (), 1):
        for key in ("extraMounts", "kubeadmConfigPatches"):  # the plugin adds to both
            if node.get(key) is not None and not isinstance(node[key], list):
                raise ConfigError(f"the kind config's node {i} has {key} that is not a list")
    if nodes is not None:
        _control_planes(nodes)
    return data


def _control_planes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one control-plane node, as a list; ConfigError for a role kind does not know, or not one."""
    for i, node in enumerate(nodes, 1):
        role = node.get("role", "control-plane")  # kind's default role
        if role not in ROLES:
            raise ConfigError(f"the kind config's node {i} has role {role!r}; kind knows {' and '.join(ROLES)}")
    control_planes = [n for n in nodes if n.get("role", "control-plane") == "control-plane"]
    if not control_planes:
        raise ConfigError("the kind config has no control-plane node; add one (role: control-plane)")
    if len(control_planes) > 1:
        raise ConfigError(
            f"the kind config has {len(control_planes)} control-plane nodes; pytest-kind-audit needs exactly one: "
            "it reads one API server's audit log (and kind's load balancer in front of several comes from a "
            "registry, so the offline toolchain cannot build it); add worker nodes instead"
        )
    return control_planes


def _check_no_conflict(data: Mapping[str, Any], node: Mapping[str, Any]) -> None:
    """A user's own audit flags would fight ours; a versioned patch may be silently skipped by kind."""
    import yaml

    for patch in [*(data.get("kubeadmConfigPatches") or []), *(node.get("kubeadmConfigPatches") or [])]:
        text = patch if isinstance(patch, str) else yaml.safe_dump(patch)
        if re.search(r"\baudit-(log-path|policy-file)\b", text):
            raise ConfigError(
                "the kind config already sets audit-log-path or audit-policy-file; remove them "
                "(the plugin adds its own), or pass the policy with --kind-audit-policy"
            )


def load_base(path: str | Path) -> dict[str, Any]:
    """A user's kind config file, checked enough to merge into."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"kind config file {str(p)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"kind config file {str(p)!r} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"kind config file {str(p)!r} is not valid YAML") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"kind config file {str(p)!r} must hold a mapping (a kind Cluster config)")
    return _check_base(data)

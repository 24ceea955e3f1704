from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kind_audit import ConfigError, KindConfig
from pytest_kind_audit.kindconfig import AUDIT_LOG_PATH, POLICY_PATH, kubeadm_api, load_base, parse_version

KIND_VERSIONS = [(0, m, 0) for m in range(20, 34)]
KUBE_VERSIONS = [(1, m, 2) for m in range(27, 38)]


def build(tmp_path: Path, kind: tuple[int, int, int], kube: tuple[int, int, int], **kw: Any) -> KindConfig:
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n")
    return KindConfig.build(policy_file=policy, kind_version=kind, kubernetes_version=kube, **kw)


def cluster_patch(config: KindConfig) -> dict[str, Any]:
    (node,) = config.data["nodes"]
    docs = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
    (patch,) = [d for d in docs if d["kind"] == "ClusterConfiguration"]
    return patch


@pytest.mark.parametrize("kube", KUBE_VERSIONS, ids=lambda v: f"k8s-{v[0]}.{v[1]}")
@pytest.mark.parametrize("kind", KIND_VERSIONS, ids=lambda v: f"kind-{v[0]}.{v[1]}")
def test_every_supported_pair(tmp_path: Path, kind: tuple[int, int, int], kube: tuple[int, int, int]) -> None:
    if kind < (0, 32, 0) and kube >= (1, 37, 0):
        with pytest.raises(ConfigError, match=r"use kind v0\.32\.0 or newer"):
            build(tmp_path, kind, kube)
        return
    config = build(tmp_path, kind, kube, cgroup_v1_host=True)
    patch = cluster_patch(config)
    # No apiVersion: kind silently skips a patch whose apiVersion does not match what it renders.
    assert "apiVersion" not in patch
    args = patch["apiServer"]["extraArgs"]
    v1beta4 = kind >= (0, 32, 0) and kube >= (1, 36, 0)
    assert config.kubeadm_api == ("kubeadm.k8s.io/v1beta4" if v1beta4 else "kubeadm.k8s.io/v1beta3")
    if v1beta4:
        assert args == [
            {"name": "audit-log-path", "value": AUDIT_LOG_PATH},
            {"name": "audit-policy-file", "value": POLICY_PATH},
        ]
    else:
        assert args == {"audit-log-path": AUDIT_LOG_PATH, "audit-policy-file": POLICY_PATH}
    volumes = {v["name"]: v for v in patch["apiServer"]["extraVolumes"]}
    assert volumes["audit-policies"]["mountPath"] == "/etc/kubernetes/policies"
    assert volumes["audit-policies"]["readOnly"] is True
    assert volumes["audit-logs"]["mountPath"] == "/var/log/kubernetes"
    assert volumes["audit-logs"]["readOnly"] is False
    (node,) = config.data["nodes"]
    (mount,) = node["extraMounts"]
    assert Path(mount["hostPath"]).is_absolute()
    assert mount["containerPath"] == POLICY_PATH
    kubelet = [p for p in node["kubeadmConfigPatches"] if "KubeletConfiguration" in p]
    assert bool(kubelet) == (kube >= (1, 35, 0)), "failCgroupV1: false only where kubelet needs it"


def test_no_cgroup_patch_on_cgroup_v2_hosts(tmp_path: Path) -> None:
    config = build(tmp_path, (0, 33, 0), (1, 36, 0), cgroup_v1_host=False)
    assert len(config.data["nodes"][0]["kubeadmConfigPatches"]) == 1


def test_user_config_is_merged_not_replaced(tmp_path: Path) -> None:
    base = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"podSubnet": "10.250.0.0/16"},
        "featureGates": {"SomeGate": True},
        "nodes": [
            {
                "role": "control-plane",
                "extraPortMappings": [{"containerPort": 80, "hostPort": 8080}],
                "kubeadmConfigPatches": ["kind: InitConfiguration\nnodeRegistration:\n  name: x\n"],
                "extraMounts": [{"hostPath": "/data", "containerPath": "/data"}],
            },
            {"role": "worker"},
        ],
    }
    config = build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    data = config.data
    assert data["networking"] == {"podSubnet": "10.250.0.0/16"}
    assert data["featureGates"] == {"SomeGate": True}
    cp, worker = data["nodes"]
    # Workers get the policy's bind mount only: it proves whose node each is when the cluster is deleted.
    assert worker == {"role": "worker", "extraMounts": [cp["extraMounts"][-1]]}
    assert cp["extraPortMappings"] == [{"containerPort": 80, "hostPort": 8080}]
    assert cp["kubeadmConfigPatches"][0].startswith("kind: InitConfiguration")
    assert len(cp["kubeadmConfigPatches"]) == 2
    assert [m["containerPath"] for m in cp["extraMounts"]] == ["/data", POLICY_PATH]
    assert len(base["nodes"][0]["extraMounts"]) == 1, "the user's dict is not modified"  # type: ignore[index]


def test_default_config_has_one_control_plane(tmp_path: Path) -> None:
    config = build(tmp_path, (0, 30, 0), (1, 34, 4))
    assert config.data["kind"] == "Cluster"
    assert config.data["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config.data["nodes"]] == ["control-plane"]


def test_two_control_planes_are_refused_saying_why(tmp_path: Path) -> None:
    base = {"nodes": [{"role": "control-plane"}, {"role": "worker"}, {}]}  # kind's default role: control-plane
    with pytest.raises(ConfigError) as info:
        build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    assert str(info.value) == (
        "the kind config has 2 control-plane nodes; pytest-kind-audit needs exactly one: it reads one API "
        "server's audit log (and kind's load balancer in front of several comes from a registry, so the offline "
        "toolchain cannot build it); add worker nodes instead"
    )


def test_no_control_plane_is_refused_and_no_nodes_is_kinds_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, (0, 30, 0), (1, 34, 4), base={"nodes": [{"role": "worker"}]})
    assert str(info.value) == "the kind config has no control-plane node; add one (role: control-plane)"
    config = build(tmp_path, (0, 30, 0), (1, 34, 4), base={"nodes": []})
    assert config.roles == ("control-plane",)


@pytest.mark.parametrize("key", ["extraMounts", "kubeadmConfigPatches"])
def test_a_node_list_field_that_is_not_a_list_is_one_line(tmp_path: Path, key: str) -> None:
    base = {"nodes": [{"role": "control-plane"}, {"role": "worker", key: {"hostPath": "/x"}}]}
    with pytest.raises(ConfigError) as info:
        build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    assert str(info.value) == f"the kind config's node 2 has {key} that is not a list"
    base = {"nodes": [{"role": "control-plane", key: None}, {"role": "worker", key: None}]}
    assert build(tmp_path, (0, 30, 0), (1, 34, 4), base=base).workers == 1


def test_a_role_kind_does_not_know_is_refused_naming_the_node(tmp_path: Path) -> None:
    base = {"nodes": [{"role": "control-plane"}, {"role": "worker"}, {"role": "master"}]}
    with pytest.raises(ConfigError) as info:
        build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    assert str(info.value) == "the kind config's node 3 has role 'master'; kind knows control-plane and worker"


def test_workers_are_counted_and_the_default_cni_read(tmp_path: Path) -> None:
    config = build(tmp_path, (0, 30, 0), (1, 34, 4))
    assert (config.workers, config.default_cni, config.control_plane_image) == (0, True, "")
    base = {
        "networking": {"disableDefaultCNI": True},
        "nodes": [{"role": "worker", "image": "w:1"}, {"image": "cp:1"}, {"role": "worker"}],
    }
    config = build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    assert (config.workers, config.default_cni, config.control_plane_image) == (2, False, "cp:1")


def test_users_own_audit_flags_are_refused(tmp_path: Path) -> None:
    base = {"kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-path: /x\n"]}
    with pytest.raises(ConfigError, match="already sets audit-log-path"):
        build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)


def test_relative_policy_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be an absolute path"):
        KindConfig.build(policy_file="policy.yaml", kind_version=(0, 30, 0), kubernetes_version=(1, 34, 4))


def test_write_refuses_a_missing_policy_file(tmp_path: Path) -> None:
    config = build(tmp_path, (0, 30, 0), (1, 34, 4))
    config.policy_path.unlink()
    with pytest.raises(ConfigError, match="does not exist; write it first"):
        config.write(tmp_path / "kind.yaml")


def test_written_yaml_round_trips(tmp_path: Path) -> None:
    config = build(tmp_path, (0, 30, 0), (1, 34, 4))
    path = config.write(tmp_path / "kind.yaml")
    assert yaml.safe_load(path.read_text()) == config.data


def test_old_kubernetes_is_refused() -> None:
    with pytest.raises(ConfigError, match="too old"):
        kubeadm_api((0, 30, 0), (1, 22, 0))


@pytest.mark.parametrize(
    ("text", "version"),
    [("kind v0.30.0 go1.26.8 linux/amd64", (0, 30, 0)), ("v1.34.4", (1, 34, 4)), ("1.36", (1, 36, 0))],
)
def test_parse_version(text: str, version: tuple[int, int, int]) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a mapping"),
        ("kind: Pod\n", "must be kind: Cluster"),
        ("nodes: {a: 1}\n", "nodes must be a list"),
        ("nodes: [{role: control-plane}, {role: Worker}]\n", "node 2 has role 'Worker'; kind knows"),
        ("nodes: [{role: control-plane}, {role: control-plane}]\n", "has 2 control-plane nodes; .* one API server"),
        ("nodes: [{role: worker}]\n", r"has no control-plane node; add one \(role: control-plane\)"),
        ("a: [\n", "is not valid YAML"),
    ],
)
def test_load_base_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "kind.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_base(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_base(tmp_path / "missing.yaml")


def test_a_control_plane_file_is_mounted_on_the_control_plane_only_and_the_original_is_unchanged(
    tmp_path: Path,
) -> None:
    base = {
        "nodes": [
            {"role": "worker"},
            {"role": "control-plane", "extraMounts": [{"hostPath": "/a", "containerPath": "/b"}]},
        ]
    }
    config = build(tmp_path, (0, 30, 0), (1, 34, 4), base=base)
    fingerprint = tmp_path / "cluster.json"
    mounted = config.with_control_plane_file(fingerprint, "/kind-audit/cluster.json")
    worker, control_plane = mounted.data["nodes"]
    assert control_plane["extraMounts"] == [
        {"hostPath": "/a", "containerPath": "/b"},
        {"hostPath": str(tmp_path / "audit-policy.yaml"), "containerPath": POLICY_PATH, "readOnly": True},
        {"hostPath": str(fingerprint), "containerPath": "/kind-audit/cluster.json", "readOnly": True},
    ]
    assert [m["containerPath"] for m in worker["extraMounts"]] == [POLICY_PATH]
    assert [len(n["extraMounts"]) for n in config.data["nodes"]] == [1, 2], "the original config is unchanged"
    assert (mounted.policy_path, mounted.kubeadm_api, mounted.apiserver_args) == (
        config.policy_path, config.kubeadm_api, config.apiserver_args,
    )  # fmt: skip

"""kind's default node image, found in a binary's bytes; image references and kind versions parsed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pytest_kind_audit import environment
from pytest_kind_audit.environment import (
    KIND_DEFAULT_IMAGES,
    Environment,
    ImageReference,
    check_kind_supports,
    check_pod_network,
    default_image,
    find_default_images,
    manifest_kinds,
    parse_image_reference,
    parse_kind_version,
)
from pytest_kind_audit.exceptions import ConfigError, EnvironmentNotReady
from pytest_kind_audit.kindconfig import KindConfig

DIGEST = "sha256:" + "0123456789abcdef" * 4
LOCAL = f"127.0.0.1:5000/kind-audit-ci/node:v1.34.4-2@{DIGEST}"
KIND_V030 = KIND_DEFAULT_IMAGES[(0, 30, 0)]


@pytest.mark.parametrize(
    ("reference", "name", "tag", "digest", "version"),
    [
        ("kindest/node:v1.34.0@" + DIGEST, "kindest/node", "v1.34.0", DIGEST, (1, 34, 0)),
        ("kindest/node@" + DIGEST, "kindest/node", "", DIGEST, None),
        ("kindest/node:v1.34.0", "kindest/node", "v1.34.0", "", (1, 34, 0)),
        ("kindest/node", "kindest/node", "", "", None),
        (LOCAL, "127.0.0.1:5000/kind-audit-ci/node", "v1.34.4-2", DIGEST, (1, 34, 4)),
        ("127.0.0.1:5000/kind-audit-ci/node@" + DIGEST, "127.0.0.1:5000/kind-audit-ci/node", "", DIGEST, None),
        ("localhost:5000/node", "localhost:5000/node", "", "", None),
        ("localhost:5000/node:v1.37.0", "localhost:5000/node", "v1.37.0", "", (1, 37, 0)),
        ("[::1]:5000/kind/node:v1.36.1-rc.0", "[::1]:5000/kind/node", "v1.36.1-rc.0", "", (1, 36, 1)),
        ("registry.example.com/kind/node:latest", "registry.example.com/kind/node", "latest", "", None),
        ("docker.io/kindest/node:v1.31.2", "docker.io/kindest/node", "v1.31.2", "", (1, 31, 2)),
        ("kind-audit-ci/node:v1.34.4-2", "kind-audit-ci/node", "v1.34.4-2", "", (1, 34, 4)),
        # Tags that do not name a Kubernetes version: no guess (the image's /kind/version decides).
        ("my/node:v2", "my/node", "v2", "", None),
        ("my/node:2.0.1", "my/node", "2.0.1", "", None),
        ("my/node:v2.0.1", "my/node", "v2.0.1", "", None),
        ("my/node:20250101", "my/node", "20250101", "", None),
    ],
)
def test_image_references_split_into_name_tag_and_digest(
    reference: str, name: str, tag: str, digest: str, version: tuple[int, int, int] | None
) -> None:
    ref = parse_image_reference(reference)
    assert ref == ImageReference(name, tag, digest)
    assert ref.tag_version == version
    assert str(ref) == reference


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("kindest/node:v1.34.0@sha256:xyz", "is not a digest"),
        ("kindest/node:v1.34.0@", "is not a digest"),
        ("kindest/node:", "is not a tag"),
        ("Kindest/Node:v1", "is not a repository name"),
        (":v1.34.0", "is not a repository name"),
        ("", "is not a repository name"),
    ],
)
def test_malformed_references_are_refused(reference: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_image_reference(reference)


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("kind v0.30.0 go1.26.8 linux/amd64\n", (0, 30, 0)),
        ("kind v0.33.0 go1.26.8 darwin/arm64", (0, 33, 0)),
        ("kind v0.31.0-alpha+1a2b3c go1.25 linux/amd64", (0, 31, 0)),
        ("kind v0.20.0", (0, 20, 0)),
    ],
)
def test_kind_version_output(output: str, version: tuple[int, int, int]) -> None:
    assert parse_kind_version(output) == version


@pytest.mark.parametrize(
    ("output", "said"),
    [
        ("", "printed nothing"),
        ("\n", "printed nothing"),
        ("hello 1.2.3", "printed 'hello 1.2.3'"),
        ("v0.30.0", "printed 'v0.30.0'"),
        ("kind version 0.30", "printed 'kind version 0.30'"),
        ("kind v0.30", "printed 'kind v0.30'"),
        ("kind v0.30.0x", "printed 'kind v0.30.0x'"),
    ],
)
def test_what_is_not_kind_version_output_is_refused(output: str, said: str) -> None:
    with pytest.raises(ValueError, match=r"^printed") as info:
        parse_kind_version(output)
    assert str(info.value) == said


# Go stores string constants back to back with no separator, sorted by length: the reference is glued to
# the end of the string before it, and the string after it may start with a hex digit.
@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"accepted" + KIND_V030.encode() + b"tls: next", [KIND_V030]),
        (b"x = y\x00" + KIND_V030.encode() + b"cafe", [KIND_V030]),
        (b"...this error" + LOCAL.encode() + b"could not", [LOCAL]),
        (b"...version 1.2" + LOCAL.encode() + b"could not", [LOCAL]),
        (b"foo/bar" + LOCAL.encode(), [LOCAL]),
        (b"requestedlocalhost:5000/x/node:v1.34.4@" + DIGEST.encode(), [f"localhost:5000/x/node:v1.34.4@{DIGEST}"]),
        (b"ab[::1]:5000/x/node@" + DIGEST.encode(), [f"[::1]:5000/x/node@{DIGEST}"]),
        (b"oops kindest/node:v9.9.9@" + DIGEST.encode(), [f"kindest/node:v9.9.9@{DIGEST}"]),
        (b"gluedkindest/node:v9.9.9@" + DIGEST.encode(), [f"kindest/node:v9.9.9@{DIGEST}"]),
        (b" my.registry.io:443/team/kind-node:v1.35.0@" + DIGEST.encode(),
         [f"my.registry.io:443/team/kind-node:v1.35.0@{DIGEST}"]),
        # The same reference twice is one; two different ones are both listed.
        (KIND_V030.encode() + b"|" + KIND_V030.encode(), [KIND_V030]),
        (KIND_V030.encode() + b" " + LOCAL.encode(), [KIND_V030, LOCAL]),
        # No digest-pinned reference: nothing (kind's "kindest/node:latest" build default is not one).
        (b"kindest/node:latestdelete all clusters kindest/node:v1.34.0", []),
        (b"@sha256:" + DIGEST[7:].encode(), []),
        (b"kindest/node:v1.34.0@sha256:" + b"0" * 63 + b"z", []),
    ],
)  # fmt: skip
def test_digest_pinned_references_are_found_in_a_binary(data: bytes, found: list[str]) -> None:
    assert find_default_images(data) == found


def fake_binary(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "kind"
    path.write_bytes(b"\x7fELF" + os.urandom(64).replace(b"@", b"") + data + b"\x00" * 16)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_default_image_is_the_reference_in_the_binary(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, b"accepted" + LOCAL.encode())
    # A kind rebuilt with another default: the binary wins over the release's known default.
    assert default_image(binary, (0, 30, 0)) == LOCAL


def test_default_image_falls_back_to_the_known_default_of_the_release(tmp_path: Path) -> None:
    wrapper = tmp_path / "kind-wrapper"
    wrapper.write_text('#!/bin/sh\nexec /opt/kind/bin/kind "$@"\n')  # a version manager's shim
    assert default_image(str(wrapper), (0, 33, 0)) == KIND_DEFAULT_IMAGES[(0, 33, 0)]
    assert default_image(str(tmp_path / "gone"), (0, 20, 0)) == KIND_DEFAULT_IMAGES[(0, 20, 0)]


def test_several_references_pick_the_known_default_or_say_so(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, LOCAL.encode() + b" " + KIND_V030.encode())
    assert default_image(binary, (0, 30, 0)) == KIND_V030
    with pytest.raises(EnvironmentNotReady, match=r"holds several node image references .* pass --kind-audit-image"):
        default_image(binary, (0, 99, 0))


def test_no_default_image_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, b"nothing here")
    with pytest.raises(EnvironmentNotReady) as info:
        default_image(binary, (0, 99, 0))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot tell the default node image of {binary} (kind v0.99.0)")
    assert message.endswith("pass --kind-audit-image")


def test_the_known_defaults_are_digest_pinned_kindest_images() -> None:
    assert sorted(KIND_DEFAULT_IMAGES) == [(0, minor, 0) for minor in range(20, 34)]
    for reference in KIND_DEFAULT_IMAGES.values():
        ref = parse_image_reference(reference)
        assert ref.name == "kindest/node" and ref.digest.startswith("sha256:") and ref.tag_version is not None


def test_a_kind_too_old_for_the_image_is_one_line_naming_both_versions_and_the_minimum() -> None:
    image = KIND_DEFAULT_IMAGES[(0, 33, 0)]
    with pytest.raises(ConfigError) as info:
        check_kind_supports((0, 30, 0), (1, 37, 0), image)
    assert str(info.value) == (
        f"node image {image} runs Kubernetes v1.37.0: kind v0.30.0 renders kubeadm v1beta3, which Kubernetes "
        "v1.37.0 refuses: use kind v0.32.0 or newer"
    )
    check_kind_supports((0, 32, 0), (1, 37, 0), image)
    check_kind_supports((0, 30, 0), (1, 36, 1), image)
    with pytest.raises(ConfigError, match=r"runs Kubernetes v1\.22\.0: Kubernetes v1\.22\.0 is too old"):
        check_kind_supports((0, 30, 0), (1, 22, 0), "old/node:v1.22.0")


# --- the pod network for worker nodes ---------------------------------------------------------------------

FLANNEL = """\
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: flannel, namespace: kube-system}
---
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
roleRef:
  kind: ClusterRole
  name: flannel
subjects:
- kind: ServiceAccount
  name: flannel
---
kind: ConfigMap
data:
  net-conf.json: |
    {"Network": "{{ .PodSubnet }}", "Backend": {"Type": "host-gw"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds}
"""
PLACEHOLDER = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: no-cni\n  namespace: kube-system\n"


@pytest.mark.parametrize(
    ("manifest", "kinds"),
    [
        (FLANNEL, ["ServiceAccount", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]),  # nested kinds are not objects
        (PLACEHOLDER, ["ConfigMap"]),
        ("kind: 'DaemonSet'\n---\nkind: \"Deployment\"\n", ["DaemonSet", "Deployment"]),
        ("", []),
    ],
)
def test_the_kinds_of_a_cni_manifest_template(manifest: str, kinds: list[str]) -> None:
    assert manifest_kinds(manifest) == kinds


def _config(tmp_path: Path, base: dict[str, Any]) -> KindConfig:
    policy = tmp_path / "audit-policy.yaml"
    return KindConfig.build(policy_file=policy, kind_version=(0, 30, 0), kubernetes_version=(1, 34, 4), base=base)


def _env(image: str = "", node_image: str = "kind-audit-ci/node:v1.34.4-2") -> Environment:
    return Environment("kind", (0, 30, 0), image, (1, 34, 4), False, node_image=node_image)


class FakeImages:
    """The node images' files as this test says, read through the plugin's cache (no Docker)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, bytes | None]) -> None:
        self.files = files
        self.reads: list[str] = []
        monkeypatch.setenv("PYTEST_KIND_AUDIT_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setattr(environment, "docker_client", lambda: None)
        monkeypatch.setattr(
            environment,
            "image_id",
            lambda client, image: f"sha256:{image.replace('/', '_')}" if image in files else None,
        )
        monkeypatch.setattr(environment, "read_image_file", self.read)

    def read(self, client: object, image: str, path: str) -> bytes | None:
        assert path == "/kind/manifests/default-cni.yaml"
        self.reads.append(image)
        return self.files[image]


WORKERS = {"nodes": [{"role": "control-plane"}, {"role": "worker"}]}


def test_workers_with_an_image_without_a_cni_daemonset_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = FakeImages(
        monkeypatch, tmp_path, {"old:1": PLACEHOLDER.encode(), "new:1": FLANNEL.encode(), "bare:1": None}
    )
    with pytest.raises(ConfigError) as info:
        check_pod_network(_config(tmp_path, WORKERS), _env("old:1"))
    assert str(info.value) == (
        "the kind config has worker nodes, but node image old:1 has no pod network for them: its "
        "/kind/manifests/default-cni.yaml holds no DaemonSet, only ConfigMap; use an image whose default CNI "
        "is a DaemonSet (kind's kindnetd, or flannel as in pytest-kind-audit's offline images), or set "
        "networking.disableDefaultCNI: true and install your own CNI"
    )
    check_pod_network(_config(tmp_path, WORKERS), _env("new:1"))
    with pytest.raises(ConfigError, match=r"image bare:1 has no pod network .* is missing; use an image"):
        check_pod_network(_config(tmp_path, WORKERS), _env("bare:1"))
    # The answers are kept by image id: asked again, only the image without the file is read again.
    for image in ("old:1", "bare:1"):
        with pytest.raises(ConfigError):
            check_pod_network(_config(tmp_path, WORKERS), _env(image))
    check_pod_network(_config(tmp_path, WORKERS), _env("new:1"))
    assert images.reads == ["old:1", "new:1", "bare:1", "bare:1"]


def test_the_control_plane_image_is_the_one_kind_reads_the_cni_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = FakeImages(monkeypatch, tmp_path, {"old:1": PLACEHOLDER.encode(), "new:1": FLANNEL.encode()})
    own = {"nodes": [{"role": "control-plane", "image": "new:1"}, {"role": "worker", "image": "old:1"}]}
    check_pod_network(_config(tmp_path, own), _env(node_image="old:1"))  # kind's default is not used
    with pytest.raises(ConfigError, match="node image old:1 has no pod network"):
        check_pod_network(_config(tmp_path, own), _env(image="old:1", node_image="old:1"))  # --image wins
    assert images.reads == ["new:1", "old:1"]


@pytest.mark.parametrize(
    "base",
    [
        {},  # one node: no pod network needed
        {"nodes": [{"role": "control-plane"}]},
        {"networking": {"disableDefaultCNI": True}, **WORKERS},  # the user installs a CNI
        {"nodes": [{"role": "control-plane", "image": "elsewhere:1"}, {"role": "worker"}]},  # kind pulls it
    ],
)
def test_nothing_is_read_when_no_default_cni_is_needed_or_the_image_is_not_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    images = FakeImages(monkeypatch, tmp_path, {"old:1": PLACEHOLDER.encode()})
    check_pod_network(_config(tmp_path, base), _env(node_image="old:1"))
    assert images.reads == []

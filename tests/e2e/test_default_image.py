"""kind's default node image, with no image option anywhere (issue #8 items 1 and 4).

ci/setup.sh pushes the offline node image to a registry on 127.0.0.1 (ci/ensure-registry.sh) and builds
kind v0.30.0 CLIs whose compiled-in default is that registry's reference, pinned by digest
(bin/kind-default-local), or a digest the registry does not have (bin/kind-default-missing); each
binary's reference is in ``bin/<name>.image``. The image is removed from the local Docker store first
(the registry's references only: the kind-audit-ci/node tags other tests use stay), so it is pulled by
digest: by kind itself in the guide replay, by the plugin in the README example run.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pytest_kind_audit.environment import KIND_DEFAULT_IMAGES, default_image, parse_kind_version
from pytest_kind_audit.nodes import docker_client

from .helpers import delete_cluster, node_containers

pytestmark = pytest.mark.e2e

REPO = Path(__file__).parents[2]
BIN = REPO / "bin"
EXAMPLES = REPO / "examples" / "test_example.py"
GUIDE = Path(__file__).parent / "test_kind_auditing_guide.py"
NO_IMAGE_OPTION = ("PYTEST_KIND_AUDIT_IMAGE", "PYTEST_ADDOPTS")


@pytest.fixture(autouse=True, scope="module")
def _docker_sdk_loaded_outside_pytester() -> None:
    """The plugin's Docker client made before any test's pytester snapshot: pytester's teardown drops the
    modules first imported during its test, which would leave the cached client raising exception classes
    that later ``except`` clauses (in a freshly imported docker.errors) no longer catch."""
    docker_client()


def built_kind(name: str) -> tuple[str, str]:
    """bin/NAME and the default image reference it was built with."""
    binary, reference = BIN / name, BIN / f"{name}.image"
    if not binary.is_file() or not reference.is_file():
        pytest.fail(f"{binary} or {reference} is missing: run ci/setup.sh", pytrace=False)
    return str(binary), reference.read_text().strip()


def docker(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=300, check=check)


def image_present(reference: str) -> bool:
    return docker("image", "inspect", reference, check=False).returncode == 0


def remove_registry_references(reference: str) -> None:
    """Untag the registry's references of the image (its tag, its digest): never another repository's tag,
    never the image itself while other tags hold it. Afterwards the digest reference is not present."""
    name_tag, digest = reference.split("@")
    name = name_tag.rsplit(":", 1)[0]
    assert name.startswith("127.0.0.1:"), f"{reference} is not a reference of the local registry"
    for ref in (name_tag, f"{name}@{digest}"):
        if image_present(ref):
            docker("image", "rm", ref)  # no --force: refused if a container still needs this reference
    assert not image_present(reference), f"{reference} is still in the local Docker store"


def run_env(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """The child runs see no image option: not on the command line, in the environment or an ini file."""
    for key in NO_IMAGE_OPTION:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PYTEST_KIND_AUDIT_KIND_BINARY", kind)


def test_default_image_of_a_kind_release_is_its_compiled_in_constant(kind_binary: str) -> None:
    """Checked against the kind module's source: pkg/apis/config/defaults/image.go's ``const Image``."""
    version = parse_kind_version(subprocess.run([kind_binary, "version"], capture_output=True, text=True,
                                                check=True).stdout)  # fmt: skip
    found = default_image(kind_binary, version)
    assert found == KIND_DEFAULT_IMAGES[version]
    go = shutil.which("go")
    modcache = ""
    if go:
        modcache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    source = Path(modcache) / f"sigs.k8s.io/kind@v{'.'.join(map(str, version))}/pkg/apis/config/defaults/image.go"
    if modcache and source.is_file():
        (const,) = re.findall(r'^const Image = "(.*)"$', source.read_text(), re.MULTILINE)
        assert found == const


def test_the_built_kinds_default_is_the_registry_reference_by_digest() -> None:
    for name in ("kind-default-local", "kind-default-missing"):
        binary, reference = built_kind(name)
        out = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout
        assert default_image(binary, parse_kind_version(out)) == reference
        assert re.fullmatch(r"127\.0\.0\.1:\d+/[a-z0-9/_.-]+:v[0-9.]+(-\d+)?@sha256:[0-9a-f]{64}", reference)


@pytest.mark.usefixtures("whole_run_env")
def test_kind_pulls_its_default_image_by_digest_and_the_plugin_reads_its_version(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    kind, reference = built_kind("kind-default-local")
    tag = reference.split("@")[0].rsplit(":", 1)[1]
    expected = re.match(r"v\d+\.\d+\.\d+", tag)
    assert expected, tag
    run_env(monkeypatch, kind)

    # 1. kind's Auditing guide, by hand (no plugin code): `kind create cluster` with no --image pulls it.
    remove_registry_references(reference)
    t0 = time.monotonic()
    guide = pytester.runpytest_subprocess(str(GUIDE), "--run-e2e", "-p", "no:cacheprovider", timeout=900)
    guide.assert_outcomes(passed=1)
    print(f"guide replay with kind pulling {reference}: {time.monotonic() - t0:.1f}s")
    assert image_present(reference), "kind did not pull its default image"

    # 2. The README example suite through the plugin: no image option, the plugin pulls what kind would.
    remove_registry_references(reference)
    name = "dflt-" + secrets.token_hex(3)
    probe = pytester.path / "probe.json"
    monkeypatch.setenv("KIND_AUDIT_PROBE", str(probe))
    pytester.path.joinpath("test_example.py").write_text(EXAMPLES.read_text())
    pytester.makepyfile(
        test_a_default_image="""
        import json, os, subprocess, time

        def test_the_cluster_runs_kinds_default_image(audited_cluster, kind_audit_environment):
            env = kind_audit_environment
            node = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", audited_cluster.node],
                                  capture_output=True, text=True, check=True).stdout.strip()
            with open(os.environ["KIND_AUDIT_PROBE"], "w") as f:
                json.dump({"first_test": time.time(), "image": env.image, "node_image": env.node_image,
                           "kubernetes_version": list(env.kubernetes_version),
                           "server": audited_cluster.kubernetes_version, "node_runs": node}, f)
        """
    )
    started = time.time()
    try:
        result = pytester.runpytest_subprocess(
            "--kind-audit-level=RequestResponse", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
            timeout=900,
        )  # fmt: skip
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(
            [f"kind-audit: level=RequestResponse, cluster={name} (created), image=kind default, kind={kind}, *"]
        )
        seen = json.loads(probe.read_text())
        assert seen["image"] == ""  # nothing was passed to kind as --image
        assert seen["node_image"] == reference
        assert seen["node_runs"] == reference  # kind booted exactly that reference, digest and all
        assert "v" + ".".join(map(str, seen["kubernetes_version"])) == expected[0]
        assert seen["server"] == expected[0]
        assert image_present(reference)
        print(f"time to the first test, pull included, no image option: {seen['first_test'] - started:.1f}s")
        result.stdout.fnmatch_lines([f"kind-audit: cluster {name} created 1 time, deleted in *"])
    finally:
        delete_cluster(name)
    assert node_containers(name) == []


@pytest.mark.usefixtures("whole_run_env")
def test_a_failed_pull_of_the_default_image_is_one_line_and_leaves_no_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    kind, reference = built_kind("kind-default-missing")
    run_env(monkeypatch, kind)
    assert not image_present(reference)
    name = "nopull-" + secrets.token_hex(3)
    pytester.makepyfile("def test_x(audited_cluster):\n    pass\n")
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=300)  # fmt: skip
        result.assert_outcomes(errors=1)
        line = one_error_line(result.outlines)
        assert line.startswith(f"kind-audit: kind's default node image {reference} (of {kind}) is not present and "
                               "could not be pulled: ")  # fmt: skip
        # The registry's answer, through the daemon: that manifest is unknown.
        assert re.search(rf"manifest for .*@{reference.split('@')[1]} not found: manifest unknown", line), line
        result.stdout.no_fnmatch_line("*Traceback*")
    finally:
        leftovers = node_containers(name)
        if leftovers:
            delete_cluster(name)
    assert leftovers == []
    assert not list(state_dir.glob(f"clusters/{name}*")), "a host record was written for a cluster never made"


@pytest.mark.usefixtures("whole_run_env")
def test_a_kind_too_old_for_the_images_kubernetes_is_one_line_before_any_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, kind_binary: str, state_dir: Path
) -> None:
    version = parse_kind_version(subprocess.run([kind_binary, "version"], capture_output=True, text=True,
                                                check=True).stdout)  # fmt: skip
    if version >= (0, 32, 0):
        pytest.skip(f"{kind_binary} is kind v{'.'.join(map(str, version))}, new enough for Kubernetes 1.37")
    image = KIND_DEFAULT_IMAGES[(0, 33, 0)]  # kindest/node:v1.37.0@sha256:...: not here, and never pulled
    assert not image_present(image)
    run_env(monkeypatch, kind_binary)
    name = "tooold-" + secrets.token_hex(3)
    pytester.makepyfile("def test_x(audited_cluster):\n    pass\n")
    result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", f"--kind-audit-image={image}",
                                           "-p", "no:cacheprovider", timeout=300)  # fmt: skip
    result.assert_outcomes(errors=1)
    assert one_error_line(result.outlines) == (
        f"kind-audit: node image {image} runs Kubernetes v1.37.0: kind v{'.'.join(map(str, version))} renders "
        "kubeadm v1beta3, which Kubernetes v1.37.0 refuses: use kind v0.32.0 or newer"
    )
    assert node_containers(name) == []
    assert not image_present(image)


def one_error_line(outlines: list[str]) -> str:
    """The text under "ERROR at setup of test_x": exactly one line."""
    start = next(i for i, line in enumerate(outlines) if "ERROR at setup of test_x" in line) + 1
    end = next(i for i, line in enumerate(outlines) if "short test summary info" in line)
    assert end - start == 1, outlines[start:end]
    return outlines[start]


def test_the_clean_up_never_touches_another_repository() -> None:
    """remove_registry_references only ever untags the local registry's references (the tests above rely
    on it to leave the kind-audit-ci/node tags alone)."""
    with pytest.raises(AssertionError, match="is not a reference of the local registry"):
        remove_registry_references("kind-audit-ci/node:v1.34.4-2@sha256:" + "0" * 64)

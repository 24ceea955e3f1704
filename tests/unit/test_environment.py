"""kind's default node image, found in a binary's bytes; image references and kind versions parsed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_kind_audit.environment import (
    KIND_DEFAULT_IMAGES,
    ImageReference,
    check_kind_supports,
    default_image,
    find_default_images,
    parse_image_reference,
    parse_kind_version,
)
from pytest_kind_audit.exceptions import ConfigError, EnvironmentNotReady

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

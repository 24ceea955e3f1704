"""What a cluster needs before it is created: Docker, the kind binary and the node image with its
Kubernetes version. Checked once; a missing piece is one line naming the fix."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import _commands
from .exceptions import CommandError, EnvironmentNotReady
from .kindconfig import Version, parse_version
from .nodes import docker_client, first_line, image_id_of, image_present, read_image_file
from .ownership import state_dir

if TYPE_CHECKING:
    from .nodes import DockerClient

__all__ = ["Environment", "check_environment"]


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
        raise EnvironmentNotReady(f"{found} version failed: {first_line(exc)}") from None
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


def _image_kubernetes_version(client: DockerClient, image: str) -> Version:
    if not image_present(client, image):
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        if image.startswith("kindest/node:"):
            # kind will pull it; the tag names the Kubernetes version.
            return parse_version(tag)
        raise EnvironmentNotReady(
            f"node image {image!r} is not present: build it (ci/build-node-image.sh) or docker pull it"
        ) from None
    version = _cached_version(client, image)
    try:
        return parse_version(version)
    except ValueError:
        raise EnvironmentNotReady(
            f"node image {image!r} has no Kubernetes version in /kind/version: is it a kind node image?"
        ) from None


def _cached_version(client: DockerClient, image: str) -> str:
    """The image's /kind/version. Reading it takes a container; the answer is kept by image id (a content
    hash, so it can never go stale) in the state directory."""
    image_id = image_id_of(client, image).replace(":", "-")
    cache = state_dir() / "images" / f"{image_id}.version"
    try:
        return cache.read_text()
    except OSError:
        pass
    version = (read_image_file(client, image, "/kind/version") or b"").decode().strip()
    if version:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(version)
        os.replace(tmp, cache)
    return version

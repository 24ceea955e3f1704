"""Images from this host's Docker put into a cluster's nodes (``kind load docker-image``), for pods that run a
test's own workload. No pytest.

The image is looked up on this host first, so a missing one is one line naming the fix and kind is never
started (kind would say ``image: "x" not present locally`` after starting up, among its other output).
"""

from __future__ import annotations

from . import _commands
from .exceptions import CommandError, ImageLoadError
from .nodes import docker_client, image_id

__all__ = ["load_image"]

#: kind saves the image from Docker and imports it into each node's containerd, one node after the other.
LOAD_TIMEOUT = 600.0


def load_image(kind_binary: str, cluster: str, image: str, *, timeout: float = LOAD_TIMEOUT) -> str:
    """``kind load docker-image IMAGE --name CLUSTER`` (every node of the cluster); returns ``image``, the
    reference for a pod spec. ImageLoadError when the image is not on this host, or kind fails."""
    if image_id(docker_client(), image) is None:
        raise ImageLoadError(absent_message(image))
    try:
        _commands.run(load_argv(kind_binary, cluster, image), timeout=timeout)
    except CommandError as exc:
        raise ImageLoadError(failed_message(image, cluster, exc.stderr or exc.stdout)) from None
    return image


def load_argv(kind_binary: str, cluster: str, image: str) -> list[str]:
    return [kind_binary, "load", "docker-image", image, "--name", cluster]


def absent_message(image: str) -> str:
    return (
        f"image {image!r} is not on this host, so it cannot be loaded into the cluster: build or pull it on this "
        "host first (`docker images` shows what is there)"
    )


def failed_message(image: str, cluster: str, output: str) -> str:
    """One line: what failed and kind's last error line (its ``ERROR: ...`` or the command output it quotes)."""
    why = _commands.last_line(output) or "no output"
    return f"kind load docker-image {image} into cluster {cluster!r} failed: {why}"

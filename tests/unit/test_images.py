"""The messages and command of loading a host image into a cluster (the real loads are in tests/e2e)."""

from __future__ import annotations

from pytest_kind_audit.images import absent_message, failed_message, load_argv


def test_kind_loads_into_every_node_of_the_named_cluster() -> None:
    # No --nodes: kind loads into every node, workers included.
    assert load_argv("/bin/kind-v0.33.0", "c1", "my-app:dev") == [
        "/bin/kind-v0.33.0", "load", "docker-image", "my-app:dev", "--name", "c1",
    ]  # fmt: skip


def test_an_absent_image_is_one_line_naming_it_and_the_fix() -> None:
    message = absent_message("my-app:dev")
    assert "\n" not in message
    assert "'my-app:dev' is not on this host" in message
    assert "build or pull it on this host first" in message
    assert "`docker images`" in message


def test_a_failed_load_is_one_line_with_kinds_last_error_line() -> None:
    stderr = (
        'Image: "my-app:dev" with ID "sha256:0123" not yet present on node "c1-control-plane", loading...\n'
        'ERROR: failed to load image: command "docker exec --privileged -i c1-control-plane ctr images import -" '
        "failed with error: exit status 1\n"
        "Command Output: ctr: content digest sha256:0123: not found\n\n"
    )
    message = failed_message("my-app:dev", "c1", stderr)
    assert message == (
        "kind load docker-image my-app:dev into cluster 'c1' failed: Command Output: ctr: content digest "
        "sha256:0123: not found"
    )


def test_a_failed_load_without_output_says_so() -> None:
    assert failed_message("x:1", "c1", " \n") == "kind load docker-image x:1 into cluster 'c1' failed: no output"


def test_a_long_last_line_is_cut() -> None:
    assert len(failed_message("x:1", "c1", "E" * 5000)) < 400

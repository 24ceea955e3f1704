#!/usr/bin/env bash
# Build the e2e tests' in-cluster workload (tests/e2e/workload: a client-go program) into a scratch image,
# the static binary alone as its entrypoint, made with docker import (no registry, no base image).
# Output: $WORKLOAD_IMAGE (skipped when the tag exists); tests load it into a cluster with kind.
. "$(dirname "$0")/lib.sh"

if image_exists "$WORKLOAD_IMAGE"; then log "$WORKLOAD_IMAGE present, skipping"; echo "$WORKLOAD_IMAGE"; exit 0; fi
command -v go >/dev/null || die "go not found: the workload image is built from tests/e2e/workload with Go 1.24+"
need_space 500 "$CACHE_DIR"
TMP=$(mktemp -d "$CACHE_DIR/.workload.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

build_binary() {
  mkdir -p "$TMP/rootfs"; cd "$REPO_DIR/tests/e2e/workload"
  # -mod=mod: go.sum pins every module; missing ones come from the Go module proxy, never a registry.
  GOFLAGS="-mod=mod -trimpath" go_or_die build -ldflags '-s -w' -o "$TMP/rootfs/workload" .
  ! ldd "$TMP/rootfs/workload" >/dev/null 2>&1 || die "tests/e2e/workload built a dynamic binary: a scratch image needs CGO_ENABLED=0"
}

import_image() {
  tar -C "$TMP/rootfs" --owner=0 --group=0 --numeric-owner -cf "$TMP/rootfs.tar" .
  docker import --change 'ENTRYPOINT ["/workload"]' --message "pytest-kind-audit e2e workload" \
    "$TMP/rootfs.tar" "$WORKLOAD_IMAGE" >/dev/null
}

stage workload-binary build_binary
stage workload-image import_image
log "$WORKLOAD_IMAGE ready"
echo "$WORKLOAD_IMAGE"

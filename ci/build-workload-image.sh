#!/usr/bin/env bash
# Build the e2e tests' in-cluster workload (tests/e2e/workload: a client-go program) into a scratch image,
# the static binary alone as its entrypoint, made with docker import (no registry, no base image).
# Output: $WORKLOAD_IMAGE, labelled io.kind-audit.source=<hash of go.mod, go.sum and main.go>: skipped when
# the tag's label is the sources' hash, rebuilt otherwise (the tag is fixed, so the label says what it holds;
# tests/e2e/test_workload.py checks it too). Tests load it into a cluster with kind.
. "$(dirname "$0")/lib.sh"

LABEL=io.kind-audit.source
SRC_DIR=$REPO_DIR/tests/e2e/workload
# The first 12 hex digits of sha256(go.mod + go.sum + main.go), computed the same way by test_workload.py.
SOURCE_HASH=$(cd "$SRC_DIR" && cat go.mod go.sum main.go | sha256sum | cut -c1-12)
label_of() { docker image inspect -f "{{with .Config.Labels}}{{index . \"$LABEL\"}}{{end}}" "$1" 2>/dev/null; }

OLD_ID=
if image_exists "$WORKLOAD_IMAGE"; then
  have=$(label_of "$WORKLOAD_IMAGE")
  if [ "$have" = "$SOURCE_HASH" ]; then log "$WORKLOAD_IMAGE present ($LABEL=$SOURCE_HASH), skipping"; echo "$WORKLOAD_IMAGE"; exit 0; fi
  log "$WORKLOAD_IMAGE is stale ($LABEL=${have:-none}, sources $SOURCE_HASH): rebuilding"
  OLD_ID=$(docker image inspect -f '{{.Id}}' "$WORKLOAD_IMAGE")
fi
command -v go >/dev/null || die "go not found: the workload image is built from tests/e2e/workload with Go 1.24+"
need_space 500 "$CACHE_DIR"
TMP=$(mktemp -d "$CACHE_DIR/.workload.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

build_binary() {
  mkdir -p "$TMP/rootfs"; cd "$SRC_DIR"
  # -mod=readonly: go.mod and go.sum are tracked and complete, so the build never rewrites them; modules
  # missing from the cache come from the Go module proxy, checked against go.sum.
  GOFLAGS="-mod=readonly -trimpath" go_or_die build -ldflags '-s -w' -o "$TMP/rootfs/workload" .
  ! ldd "$TMP/rootfs/workload" >/dev/null 2>&1 || die "tests/e2e/workload built a dynamic binary: a scratch image needs CGO_ENABLED=0"
}

# Imported untagged, then tagged: the tag moves only once the new image is complete.
import_image() {
  local id
  tar -C "$TMP/rootfs" --owner=0 --group=0 --numeric-owner -cf "$TMP/rootfs.tar" .
  id=$(docker import --change 'ENTRYPOINT ["/workload"]' --change "LABEL $LABEL=$SOURCE_HASH" \
    --message "pytest-kind-audit e2e workload" "$TMP/rootfs.tar")
  docker tag "$id" "$WORKLOAD_IMAGE"
  # The stale image, now untagged; kept if a container still uses it.
  if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$id" ]; then docker rmi "$OLD_ID" >/dev/null 2>&1 || true; fi
}

stage workload-binary build_binary
stage workload-image import_image
log "$WORKLOAD_IMAGE ready ($LABEL=$SOURCE_HASH)"
echo "$WORKLOAD_IMAGE"

#!/usr/bin/env bash
# Build containerd 2.x (containerd, ctr, containerd-shim-runc-v2) from its Go module, for a node image
# whose Kubernetes no longer works with Debian bookworm's containerd 1.6 (kubelet 1.37+ takes the cgroup
# driver from the runtime's CRI RuntimeConfig, which 1.6 lacks). Pure Go (CGO_ENABLED=0), with kind's
# build tags (no optional snapshotters); the shim with containerd's own no_grpc tag.
# Output: $CACHE_DIR/containerd-$CONTAINERD_VERSION/ (skipped when complete). The last line printed is
# that directory. Only for a line that pins CONTAINERD_VERSION (CI_LINE=2; see ci/versions.env).
. "$(dirname "$0")/lib.sh"

[ -n "$CONTAINERD_VERSION" ] || die "line $CI_LINE uses Debian's containerd (no CONTAINERD_VERSION in ci/versions.env): nothing to build"
OUT=$CACHE_DIR/containerd-$CONTAINERD_VERSION
BINS=(containerd ctr containerd-shim-runc-v2)
MOD=github.com/containerd/containerd/v2
# `containerd --version` prints "containerd github.com/containerd/containerd/v2 v2.4.2 <revision>".
have() {
  local b; for b in "${BINS[@]}"; do [ -x "$1/$b" ] || return 1; done
  "$1/containerd" --version 2>/dev/null | grep -q " $CONTAINERD_VERSION\( \|$\)"
}
if have "$OUT"; then log "containerd $CONTAINERD_VERSION present in $OUT, skipping"; echo "$OUT"; exit 0; fi
go_build_dir containerd 1500 "containerd $CONTAINERD_VERSION ($MOD)"
LDF="-s -w -X $MOD/version.Version=$CONTAINERD_VERSION -X $MOD/version.Package=$MOD"
TAGS="urfave_cli_no_docs no_aufs no_zfs no_btrfs no_devmapper"

# go install, not a wrapper module: containerd's go.mod has no replace directives.
build_daemon() { GOBIN=$TMP go_or_die install -tags "$TAGS" -ldflags "$LDF" "$MOD/cmd/containerd@$CONTAINERD_VERSION" "$MOD/cmd/ctr@$CONTAINERD_VERSION"; }
build_shim() { GOBIN=$TMP go_or_die install -tags "$TAGS no_grpc" -ldflags "$LDF" "$MOD/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"; }

stage containerd+ctr build_daemon
stage containerd-shim build_shim
have "$TMP" || die "the built containerd reports $("$TMP/containerd" --version 2>&1), expected $CONTAINERD_VERSION"
mkdir -p "$TMP/final"; for b in "${BINS[@]}"; do mv "$TMP/$b" "$TMP/final/"; done
rm -rf "$OUT"; mv "$TMP/final" "$OUT"
log "$("$OUT/containerd" --version)"
echo "$OUT"

#!/usr/bin/env bash
# Build the kind CLI from its Go module into the project's bin/ (skipped when the pinned version is there):
# bin/kind for the first line, bin/kind-<version> for the second (CI_LINE=2), so both coexist.
. "$(dirname "$0")/lib.sh"

KIND=$BIN_DIR/$KIND_BINARY
have() { [ -x "$KIND" ] && "$KIND" version 2>/dev/null | grep -q "^kind $KIND_VERSION "; }
if have; then log "$("$KIND" version) present as $KIND, skipping"; exit 0; fi
command -v go >/dev/null || die "go not found: install Go 1.22+ to build the kind CLI from sigs.k8s.io/kind@$KIND_VERSION"
need_space 1000 "$BIN_DIR"

build() {
  local tmp; tmp=$(mktemp -d "$BIN_DIR/.kind.XXXXXX")
  GOBIN=$tmp go_or_die install -ldflags '-s -w' "sigs.k8s.io/kind@$KIND_VERSION"
  mv "$tmp/kind" "$KIND"; rmdir "$tmp"
}
stage kind-cli build
have || die "$KIND does not report $KIND_VERSION: $("$KIND" version 2>&1)"
log "$("$KIND" version)"

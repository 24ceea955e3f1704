#!/usr/bin/env bash
# Build the kind CLI from its Go module into the project's bin/ (skipped when the pinned version is there).
. "$(dirname "$0")/lib.sh"

have() { [ -x "$BIN_DIR/kind" ] && "$BIN_DIR/kind" version 2>/dev/null | grep -q "^kind $KIND_VERSION "; }
if have; then log "$("$BIN_DIR/kind" version) present in $BIN_DIR, skipping"; exit 0; fi
command -v go >/dev/null || die "go not found: install Go 1.22+ to build the kind CLI from sigs.k8s.io/kind@$KIND_VERSION"
need_space 1000 "$BIN_DIR"

build() {
  local tmp; tmp=$(mktemp -d "$BIN_DIR/.kind.XXXXXX")
  GOBIN=$tmp go_or_die install -ldflags '-s -w' "sigs.k8s.io/kind@$KIND_VERSION"
  mv "$tmp/kind" "$BIN_DIR/kind"; rmdir "$tmp"
}
stage kind-cli build
have || die "bin/kind does not report $KIND_VERSION: $("$BIN_DIR/kind" version 2>&1)"
log "$("$BIN_DIR/kind" version)"

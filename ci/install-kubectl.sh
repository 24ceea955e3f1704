#!/usr/bin/env bash
# Put a kubectl matching the node image into bin/: copied out of the image itself, so it needs
# neither a download nor the binaries cache (skipped when bin/kubectl is the pinned version).
. "$(dirname "$0")/lib.sh"

have() { [ -x "$BIN_DIR/kubectl" ] && "$BIN_DIR/kubectl" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBERNETES_VERSION\""; }
if have; then log "kubectl $KUBERNETES_VERSION present in $BIN_DIR, skipping"; exit 0; fi
image_exists "$NODE_IMAGE" || die "$NODE_IMAGE is missing: run ci/setup.sh"
mkdir -p "$BIN_DIR"
copy() {
  local tmp; tmp=$(mktemp "$BIN_DIR/.kubectl.XXXXXX")
  docker run --rm --entrypoint cat "$NODE_IMAGE" /usr/bin/kubectl > "$tmp"
  chmod 0755 "$tmp"; mv "$tmp" "$BIN_DIR/kubectl"
}
stage kubectl copy
have || die "bin/kubectl does not report $KUBERNETES_VERSION"

#!/usr/bin/env bash
# Put a kubectl matching the node image into $KUBECTL_DIR (bin/ for the first line, bin/kubectl-<version>/
# for the second): copied out of the image itself, so it needs neither a download nor the binaries cache
# (skipped when that kubectl is the pinned version).
. "$(dirname "$0")/lib.sh"

KUBECTL=$KUBECTL_DIR/kubectl
have() { [ -x "$KUBECTL" ] && "$KUBECTL" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBERNETES_VERSION\""; }
if have; then log "kubectl $KUBERNETES_VERSION present in $KUBECTL_DIR, skipping"; exit 0; fi
image_exists "$NODE_IMAGE" || die "$NODE_IMAGE is missing: run ci/setup.sh"
mkdir -p "$KUBECTL_DIR"
copy() {
  local tmp; tmp=$(mktemp "$KUBECTL_DIR/.kubectl.XXXXXX")
  docker run --rm --entrypoint cat "$NODE_IMAGE" /usr/bin/kubectl > "$tmp"
  chmod 0755 "$tmp"; mv "$tmp" "$KUBECTL"
}
stage kubectl copy
have || die "$KUBECTL does not report $KUBERNETES_VERSION"

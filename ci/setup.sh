#!/usr/bin/env bash
# Everything the real-cluster tests need, each step skipped when its output exists:
# a running Docker Engine, bin/kind, the offline node image, bin/kubectl.
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)
"$CI_DIR/ensure-docker.sh"
"$CI_DIR/build-kind.sh"
if image_exists "$NODE_IMAGE"; then
  log "$NODE_IMAGE present, skipping the node image build"
else
  "$CI_DIR/build-base-image.sh"
  binaries=$("$CI_DIR/build-binaries.sh" | tail -n 1)
  runc=$("$CI_DIR/build-runc.sh" | tail -n 1)
  "$CI_DIR/build-node-image.sh" "$binaries" "$runc"
fi
"$CI_DIR/install-kubectl.sh"
"$CI_DIR/ensure-chromium.sh"
log "ready in $(( $(date +%s) - t0 ))s: export PATH=$BIN_DIR:\$PATH PYTEST_KIND_AUDIT_IMAGE=$NODE_IMAGE"

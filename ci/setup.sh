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
# The local registry holding the node image, and kind CLIs whose default node image is in it (and one
# whose digest is not), for tests/e2e/test_default_image.py.
ref=$("$CI_DIR/ensure-registry.sh" | tail -n 1)
"$CI_DIR/build-kind-default.sh" kind-default-local "$ref"
"$CI_DIR/build-kind-default.sh" kind-default-missing "${ref%@*}@sha256:$(printf 'absent: %s' "$ref" | sha256sum | cut -c1-64)"
"$CI_DIR/ensure-chromium.sh"
log "ready in $(( $(date +%s) - t0 ))s: export PATH=$BIN_DIR:\$PATH PYTEST_KIND_AUDIT_IMAGE=$NODE_IMAGE"

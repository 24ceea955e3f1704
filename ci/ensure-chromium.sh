#!/usr/bin/env bash
# Debian's Chromium and its driver, for the test that drives the HTML report in a real headless browser.
. "$(dirname "$0")/lib.sh"
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then log "chromium present, skipping"; exit 0; fi
install() {
  need_space 1500 /usr
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null ||
    die "apt-get install chromium chromium-driver failed"
}
stage chromium install

#!/bin/sh
# Install Debian's chromium for the dashboard's browser test (test/observe/dashboard.ts, driven
# by puppeteer-core, whose own browser download does not work here). Safe to run twice: the
# package is only installed when missing. Needs root to install.
set -eu

log() { echo "browser-up: $*" >&2; }

if command -v chromium >/dev/null 2>&1; then
  log "chromium already installed: $(chromium --version 2>/dev/null || echo '?')"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "must run as root to install chromium (apt-get install -y chromium)"; exit 1
fi
log "installing chromium"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

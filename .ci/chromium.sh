#!/usr/bin/env bash
# Debian's Chromium for the browser tests, installed the way PostgreSQL is: the tests drive
# /usr/bin/chromium through Playwright, which never downloads a browser of its own.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq chromium >&2
command -v chromium >/dev/null

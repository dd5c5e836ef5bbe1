#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: Debian's chromium for the dashboard browser test
# (playwright-core drives /usr/bin/chromium; it cannot download its own browsers here). Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium

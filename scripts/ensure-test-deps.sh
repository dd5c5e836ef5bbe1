#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, from Debian's packages, only where missing. Idempotent:
# a machine that has everything is not touched (no apt-get update either).
#   chromium:  the dashboard browser test (playwright-core drives /usr/bin/chromium; it cannot download its own
#              browsers here).
#   mosquitto: the external-broker tests run a private /usr/sbin/mosquitto with its dynamic-security plugin.
#   postgresql: `npm run test:pg` (part of `npm test`) runs the suite on a private PostgreSQL 15.
set -euo pipefail

# "binary package" pairs: the package is installed when the binary is missing.
NEEDS=(
  "/usr/bin/chromium chromium"
  "/usr/sbin/mosquitto mosquitto"
  "/usr/lib/postgresql/15/bin/initdb postgresql"
)

missing=()
for need in "${NEEDS[@]}"; do
  read -r binary package <<<"$need"
  if [ ! -x "$binary" ]; then missing+=("$package"); fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"

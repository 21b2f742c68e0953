#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on PATH, for the meeting-pack test (tests/integration/test_pack.py).
# Idempotent: does nothing when `chromium` is already there. Installs Debian's `chromium` package
# (it lands at /usr/bin/chromium) only when run as root; otherwise says what to run and fails.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "ensure-chromium: chromium already installed at $(command -v chromium)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: chromium is not on PATH and this is not root, so it cannot be installed here;" \
         "run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: chromium is not on PATH and apt-get is missing (not Debian/Ubuntu);" \
         "install Chromium by hand so that \`chromium\` is on PATH" >&2
    exit 1
fi

echo "ensure-chromium: chromium not found; installing the Debian package with apt-get (as root)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "ensure-chromium: apt-get update failed; cannot install chromium" >&2
    exit 1
fi
if ! apt-get install -y -qq chromium >/dev/null; then
    echo "ensure-chromium: apt-get install chromium failed; install it by hand (apt-get install -y chromium)" >&2
    exit 1
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "ensure-chromium: the chromium package installed but \`chromium\` is still not on PATH" >&2
    exit 1
fi
echo "ensure-chromium: installed $(chromium --version 2>/dev/null || echo chromium) at $(command -v chromium)"

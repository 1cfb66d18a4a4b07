#!/usr/bin/env bash
# Makes sure a headless Chromium is present for the dashboard tests: Debian's `chromium` package,
# driven by the Python `playwright` package in .venv (never `playwright install`: that downloads
# browsers from a CDN). Installs it with apt-get when it can (root); otherwise says what to install.
# Idempotent: does nothing when /usr/bin/chromium runs. EDDYLINE_CHROMIUM overrides the binary.
set -euo pipefail

browser=${EDDYLINE_CHROMIUM:-/usr/bin/chromium}

works() { [ -x "$browser" ] && "$browser" --headless --no-sandbox --version >/dev/null 2>&1; }

works && exit 0

if [ -n "${EDDYLINE_CHROMIUM:-}" ]; then
  echo "error: EDDYLINE_CHROMIUM=$browser is not a working Chromium" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing chromium from Debian's packages (headless browser for the dashboard tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation
else
  echo "error: Chromium not found at $browser: install Debian's package as root" \
    "(apt-get update && apt-get install chromium) or set EDDYLINE_CHROMIUM, then re-run" >&2
  exit 1
fi
if ! works; then
  echo "error: chromium was installed but \`$browser --headless --version\` fails" >&2
  exit 1
fi

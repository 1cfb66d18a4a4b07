#!/usr/bin/env bash
# Puts a Prometheus server and its promtool into .cache/prometheus for the monitoring tests (they
# point the server at a test stack's metrics endpoints, run every Grafana panel's query, and load
# the alert rules; promtool checks and unit-tests those rules). Both are binaries of Debian's
# `prometheus` package, unpacked rather than installed: no service starts, no user is created.
# Idempotent: does nothing when both binaries are already there and run.
set -euo pipefail

dest=${EDDYLINE_PROMETHEUS_DIR:-.cache/prometheus}
bin="$dest/bin/prometheus"
tool="$dest/bin/promtool"

"$bin" --version >/dev/null 2>&1 && "$tool" --version >/dev/null 2>&1 && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Prometheus or promtool not found in $dest/bin and no apt-get to fetch Debian's" \
    "package: put prometheus and promtool binaries (2.x) there and re-run" >&2
  exit 1
fi
echo "==> Prometheus and promtool from Debian's package into $dest (~19 MB, for the monitoring tests)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sandbox=()
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  sandbox=(-o APT::Sandbox::User=root)  # apt's _apt user cannot write into our temp folder
fi
(cd "$work" && apt-get "${sandbox[@]}" download -qq prometheus)
dpkg-deb -x "$work"/prometheus_*.deb "$work/unpacked"
mkdir -p "$dest/bin"
for name in prometheus promtool; do
  cp "$work/unpacked/usr/bin/$name" "$dest/bin/$name.tmp"
  mv "$dest/bin/$name.tmp" "$dest/bin/$name"
done
"$bin" --version | head -n1
"$tool" --version | head -n1

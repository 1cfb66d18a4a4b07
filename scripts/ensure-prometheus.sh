#!/usr/bin/env bash
# Puts a Prometheus server into .cache/prometheus for the monitoring tests (they point it at a
# test stack's metrics endpoints and run every Grafana panel's query). It is the binary of
# Debian's `prometheus` package, unpacked rather than installed: no service starts, no user is
# created. Idempotent: does nothing when the binary is already there and runs.
set -euo pipefail

dest=${EDDYLINE_PROMETHEUS_DIR:-.cache/prometheus}
bin="$dest/bin/prometheus"

"$bin" --version >/dev/null 2>&1 && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Prometheus not found at $bin and no apt-get to fetch Debian's package:" \
    "put a prometheus binary (2.x) there and re-run" >&2
  exit 1
fi
echo "==> Prometheus from Debian's package into $dest (~19 MB, for the monitoring tests)"
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
cp "$work/unpacked/usr/bin/prometheus" "$bin.tmp"
mv "$bin.tmp" "$bin"
"$bin" --version | head -n1

#!/usr/bin/env bash
# Debian packages the image build and the local cluster need: Docker's engine (to build the image
# from the Dockerfile), containerd + runc (the node's runtime), the CNI plugins, debootstrap (base
# images without a registry), iptables, conntrack. Idempotent: installs only what is missing.
set -euo pipefail

declare -A need=(
  [dockerd]=docker.io [containerd]=containerd [runc]=runc [debootstrap]=debootstrap
  [iptables]=iptables [conntrack]=conntrack
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "error: missing ${missing[*]}: install them (apt-get install ${missing[*]}) and re-run" >&2
  exit 1
fi

#!/usr/bin/env bash
# Makes sure the system tools Eddyline builds with are present: Python 3.11, Java 17+, Maven.
# Installs missing ones from Debian's packages when it can (root + apt-get); otherwise says what
# to install. Idempotent: does nothing when all are there.
set -euo pipefail

missing=()
command -v python3.11 >/dev/null 2>&1 || missing+=(python3.11 python3.11-venv)
if command -v java >/dev/null 2>&1; then
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ "${major:-0}" -ge 17 ] || missing+=(openjdk-17-jdk-headless)
else
  missing+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "error: missing ${missing[*]}: install them (e.g. apt-get install ${missing[*]}) and re-run" >&2
  exit 1
fi

#!/usr/bin/env bash
# `make image`: builds eddyline:<version> from the Dockerfile and saves it to
# .cache/image/eddyline-<version>.tar (what `make cluster-up` loads into the node).
#
#  1. Python wheels (for the base image's Python version), the Flink Kafka connector and Flink's
#     S3 filesystem plugin are resolved on the host (pip's and Maven's caches) into
#     .cache/image/deps/, so nothing inside the build needs a network.
#  2. Base images: with IMAGE_BASES=debian (the default) they are made from Debian packages with
#     debootstrap from the mirror the host's apt already uses — no container registry needed —
#     and kept in Docker's image store; IMAGE_BASES=public uses python:3.11-slim-bookworm and
#     maven:3.9-eclipse-temurin-17 from a registry.
#  3. A Docker engine of our own (its own socket and data folder, no bridge, no iptables) builds
#     with the classic builder, and is stopped again unless one was already running there.
# Idempotent and cached: Docker's layer cache, the base images, and the archive is written only
# when the image changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
PY=${PY:-.venv/bin/python}
version=$($PY -c 'from importlib.metadata import version; print(version("eddyline"))')
tag="eddyline:$version"
out=.cache/image
deps=$out/deps
archive=$out/eddyline-$version.tar
bases=${IMAGE_BASES:-debian}
docker_root=${EDDYLINE_DOCKER_ROOT:-/var/lib/eddyline-docker}
sock=/run/eddyline-docker/docker.sock
start=$SECONDS

say() { echo "==> $*"; }
fail() { echo "error: $*" >&2; exit 1; }

scripts/ensure-cluster-packages.sh

# --- 2/3. a Docker engine of our own ---------------------------------------------------------
started_dockerd=""
stop_dockerd() {
  [ -n "$started_dockerd" ] || return 0
  kill "$started_dockerd" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  # No cgroup of the build's containers is left behind.
  for d in /sys/fs/cgroup/*/eddyline-docker-build; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  true
}
trap stop_dockerd EXIT
dk() { DOCKER_BUILDKIT=0 docker -H "unix://$sock" "$@"; }
if ! dk version >/dev/null 2>&1; then
  dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
  mkdir -p "$(dirname "$sock")" "$docker_root" "$out"
  say "starting a Docker engine for the build (log $out/dockerd.log)"
  "$dockerd_bin" -H "unix://$sock" --data-root "$docker_root" \
    --exec-root /run/eddyline-docker/exec --pidfile /run/eddyline-docker/docker.pid \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
    --cgroup-parent=eddyline-docker-build >"$out/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 150); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
  dk version >/dev/null 2>&1 || fail "the Docker engine did not start (log $out/dockerd.log)"
fi

if [ "$bases" = debian ]; then
  base=eddyline.local/debian-runtime:bookworm
  if ! dk image inspect "$base" >/dev/null 2>&1; then
    # The mirror the host's apt already uses; no host is named in the project.
    mirror=$( (cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true) \
      | grep -E '^(URIs:|deb )' | grep -v security | head -n1 \
      | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//' | awk '{print $1}')
    [ -n "$mirror" ] || fail "no Debian mirror in /etc/apt/sources.list*: needed for debootstrap"
    rootfs=$(mktemp -d /var/tmp/eddyline-rootfs.XXXXXX)
    say "base image $base from Debian packages (debootstrap, ~2-3 min once)"
    if ! debootstrap --variant=minbase \
      --include=python3,python3-venv,openjdk-17-jre-headless,bash,util-linux \
      bookworm "$rootfs" "$mirror" >"$out/debootstrap.log" 2>&1; then
      rm -rf "$rootfs"
      fail "debootstrap failed (log $out/debootstrap.log)"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | dk import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
  build_args=(--build-arg "PYTHON_IMAGE=$base" --build-arg "MAVEN_IMAGE=$base")
  base_ref=$base
else
  build_args=()
  base_ref=python:3.11-slim-bookworm
  dk image inspect "$base_ref" >/dev/null 2>&1 || dk pull "$base_ref"
fi

# --- 1. dependencies, resolved on the host for the image's Python --------------------------------
# The image's Python may not be the host's (Debian's 3.11.2 vs a newer 3.11): markers such as
# python_full_version < "3.11.3" differ, so the wheels are chosen for the base image's version.
base_python=$(dk run --rm --network none "${base_ref}" python3 -c 'import platform; print(platform.python_version())')
mkdir -p "$deps/wheels" "$deps/jars"
stamp="$(cat pyproject.toml | sha256sum | cut -c1-16) $base_python"
if [ "$(cat "$deps/wheels/.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "Python wheels for the image's Python $base_python into $deps/wheels (pip's cache first)"
  rm -f "$deps/wheels"/*.whl
  # The project's dependencies (not its own wheel: the image installs it editable) and what
  # building it needs (setuptools, wheel).
  $PY - <<'PYEOF' >"$deps/requirements.txt"
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))
print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))
PYEOF
  # Wheels of the packages published only as source, built here (pure Python)...
  $PY -m pip wheel -q --wheel-dir "$deps/wheels" -r "$deps/requirements.txt"
  # ...and the whole set resolved again for the image's interpreter, binary wheels only.
  platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_5_x86_64 \
    manylinux1_x86_64 linux_x86_64; do platforms+=(--platform "$p"); done
  $PY -m pip download -q --dest "$deps/wheels" --find-links "$deps/wheels" --only-binary=:all: \
    --implementation cp --python-version "$base_python" --abi "cp$(echo "$base_python" | cut -d. -f1,2 | tr -d .)" \
    "${platforms[@]}" -r "$deps/requirements.txt"
  # pip on the host cannot evaluate every marker for another interpreter (python_full_version):
  # let the image's own pip resolve offline, and fetch on the host whatever it finds missing.
  resolved=""
  for _ in 1 2 3 4 5 6; do
    if check=$(dk run --rm --network none -v "$root/$deps:/deps:ro" "$base_ref" sh -c \
      'python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --dry-run --no-index --find-links /deps/wheels -r /deps/requirements.txt' 2>&1); then
      resolved=yes
      break
    fi
    missing=$(echo "$check" | sed -n 's/.*No matching distribution found for \([^;]*\).*/\1/p' | head -n1)
    [ -n "$missing" ] || fail "resolving the image's Python packages failed: $check"
    say "  + $missing (needed by the image's Python $base_python)"
    $PY -m pip download -q --dest "$deps/wheels" --find-links "$deps/wheels" --only-binary=:all: \
      --implementation cp --python-version "$base_python" \
      --abi "cp$(echo "$base_python" | cut -d. -f1,2 | tr -d .)" "${platforms[@]}" "$missing"
  done
  [ -n "$resolved" ] || fail "the image's Python packages do not resolve offline: $check"
  echo "$stamp" >"$deps/wheels/.stamp"
fi
make -s jars
rm -f "$deps/jars"/*.jar
rm -rf "$deps/plugins"
mkdir -p "$deps/plugins/s3-fs-hadoop"
cp .cache/jvm/flink/*.jar "$deps/jars/"
cp .cache/jvm/s3/*.jar "$deps/plugins/s3-fs-hadoop/"

say "docker build -t $tag (classic builder, no network inside)"
dk build --network none "${build_args[@]}" -t "$tag" . >"$out/build.log" 2>&1 \
  || { tail -n 30 "$out/build.log" >&2; fail "docker build failed (log $out/build.log)"; }

id=$(dk image inspect -f '{{.Id}}' "$tag")
if [ "$(cat "$archive.id" 2>/dev/null)" != "$id" ] || [ ! -f "$archive" ]; then
  say "saving $tag to $archive"
  dk save -o "$archive.tmp" "$tag"
  mv "$archive.tmp" "$archive"
  echo "$id" >"$archive.id"
fi
size=$(dk image inspect -f '{{.Size}}' "$tag")
say "$tag built in $((SECONDS - start)) s: $((size / 1024 / 1024)) MiB ($archive)"

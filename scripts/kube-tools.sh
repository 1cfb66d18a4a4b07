#!/usr/bin/env bash
# Builds the test binaries the tests/k8s and object-store fixtures run, once, into a cache:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#   kubelet, kube-proxy (the real node of `make cluster-up`)                  (scripts/kube-build:
#       a wrapper module pinning k8s.io/kubernetes + go.etcd.io/etcd/server/v3, go.sum committed)
#   kwok, helm                                                               (go install pkg@version)
#   versitygw (S3-compatible server, POSIX backend: deploy/local/objectstore.py)   (go install pkg@version)
#   coredns (cluster DNS, no forwarding), pause (the pod sandbox)             (scripts/cluster-build)
# into ${EDDYLINE_KUBE_BIN:-~/.cache/eddyline/bin}. A binary already in $KUBEBUILDER_ASSETS or on PATH
# is linked there instead of built (EDDYLINE_KUBE_FROM_PATH=0 builds everything).
# Idempotent: each binary has a stamp (version + go.sum hash); re-running with all stamps current
# does nothing. Needs the Go toolchain (go >= 1.26, or any go that may fetch it: GOTOOLCHAIN=auto).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/scripts/kube-build"
node_mod="$root/scripts/cluster-build"
BIN=${EDDYLINE_KUBE_BIN:-$HOME/.cache/eddyline/bin}
stamps="$BIN/.stamps"
from_path=${EDDYLINE_KUBE_FROM_PATH:-1}

KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
HELM_K8S_MINOR=37 # helm v3.22.0 is built on k8s.io/client-go v0.37 (its Makefile's ldflags)
VERSITYGW_VERSION=v1.8.0
K8S_VERSION=$(awk '$1 == "k8s.io/kubernetes" && NF >= 2 {print $2}' "$mod/go.mod")
ETCD_VERSION=$(awk '$1 == "go.etcd.io/etcd/server/v3" && NF >= 2 {print $2}' "$mod/go.mod")
k8s_minor=$(echo "$K8S_VERSION" | cut -d. -f2)

tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok helm versitygw coredns pause)
declare -A pkg=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
)

modhash() { cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16; }
node_modhash() { cat "$node_mod"/go.mod "$node_mod"/go.sum "$node_mod"/*/main.go | sha256sum | cut -c1-16; }
want_stamp() {
  case $1 in
    etcd) echo "go.etcd.io/etcd/server/v3@$ETCD_VERSION $(modhash)" ;;
    kwok) echo "sigs.k8s.io/kwok@$KWOK_VERSION" ;;
    helm) echo "helm.sh/helm/v3@$HELM_VERSION" ;;
    versitygw) echo "github.com/versity/versitygw@$VERSITYGW_VERSION" ;;
    coredns | pause) echo "cluster-build $(node_modhash)" ;;
    *) echo "k8s.io/kubernetes@$K8S_VERSION $(modhash)" ;;
  esac
}
current() { # built with the wanted stamp, or linked from outside and still there
  local stamp
  [ -x "$BIN/$1" ] || return 1
  stamp=$(cat "$stamps/$1" 2>/dev/null) || return 1
  [ "$stamp" = "$(want_stamp "$1")" ] || [[ $stamp == external:* ]]
}
external() { # a usable binary outside our cache: $KUBEBUILDER_ASSETS first, then PATH
  local found=""
  [ "$from_path" = 1 ] || return 1
  case $1 in coredns | pause) return 1 ;; esac # ours: always built from scripts/cluster-build
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$1" ]; then
    found="$KUBEBUILDER_ASSETS/$1"
  else
    found=$(command -v "$1" 2>/dev/null) || return 1
  fi
  found=$(readlink -f "$found")
  [ "$(dirname "$found")" != "$(readlink -f "$BIN")" ] || return 1
  echo "$found"
}

mkdir -p "$BIN" "$stamps"
todo=()
for t in "${tools[@]}"; do
  current "$t" && continue
  if ext=$(external "$t"); then
    ln -sfn "$ext" "$BIN/$t"
    echo "external:$ext" >"$stamps/$t"
    echo "==> $t: using $ext"
    continue
  fi
  todo+=("$t")
done
[ ${#todo[@]} -eq 0 ] && exit 0

if ! command -v go >/dev/null 2>&1; then
  echo "error: building ${todo[*]} needs the Go toolchain (go >= 1.26, https://go.dev/dl);" \
    "or put the binaries in \$KUBEBUILDER_ASSETS or on PATH" >&2
  exit 1
fi
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
tmp=$(mktemp -d "$BIN/.build.XXXXXX")
ticker=""
cleanup() {
  [ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Long go builds print nothing for minutes: say they are alive.
run_timed() { # what, command...
  local what=$1 start=$SECONDS
  shift
  (while sleep 60; do echo "    ... still building $what ($(((SECONDS - start) / 60)) min)"; done) &
  ticker=$!
  "$@"
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  ticker=""
  echo "    built $what in $((SECONDS - start)) s"
}
in_mod() { (cd "$mod" && "$@"); }
install_built() { # name: move from $tmp into $BIN and stamp it
  mv -f "$tmp/$1" "$BIN/$1"
  want_stamp "$1" >"$stamps/$1"
}

k8s=()
for t in "${todo[@]}"; do [ -n "${pkg[$t]:-}" ] && k8s+=("$t"); done
if [ ${#k8s[@]} -gt 0 ]; then
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
    ld+=" -X $p.gitTreeState=clean"
  done
  pkgs=()
  for t in "${k8s[@]}"; do pkgs+=("${pkg[$t]}"); done
  echo "==> building ${k8s[*]} from k8s.io/kubernetes $K8S_VERSION into $BIN" \
    "(first time: ~13 min on 2 idle cores; then cached)"
  # One invocation: the packages the commands share compile once.
  run_timed "${k8s[*]}" in_mod go build -mod=readonly -trimpath -ldflags "$ld" -o "$tmp/" "${pkgs[@]}"
  for t in "${k8s[@]}"; do install_built "$t"; done
fi

for t in "${todo[@]}"; do
  case $t in
    etcd)
      echo "==> building etcd from go.etcd.io/etcd/server/v3 $ETCD_VERSION (~1 min after the above)"
      run_timed etcd in_mod go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/etcd" \
        go.etcd.io/etcd/server/v3
      install_built etcd
      ;;
    kwok)
      echo "==> building kwok $KWOK_VERSION (simulated nodes; first time ~3 min)"
      run_timed kwok env GOBIN="$tmp" go install -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$K8S_VERSION" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
      install_built kwok
      ;;
    helm)
      echo "==> building helm $HELM_VERSION (first time ~2 min)"
      hl="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      hl+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        hl+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$HELM_K8S_MINOR"
      done
      run_timed helm env GOBIN="$tmp" go install -trimpath -ldflags "$hl" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
      install_built helm
      ;;
    versitygw)
      echo "==> building versitygw $VERSITYGW_VERSION (S3 server for the tests; first time ~2 min)"
      vl="-s -w -X main.Version=$VERSITYGW_VERSION -X main.Build=release -X main.BuildTime=none"
      run_timed versitygw env GOBIN="$tmp" go install -trimpath -ldflags "$vl" \
        "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
      install_built versitygw
      ;;
    coredns | pause)
      echo "==> building $t from scripts/cluster-build (first time: coredns ~2 min)"
      run_timed "$t" env -C "$node_mod" go build -mod=readonly -trimpath -ldflags "-s -w" \
        -o "$tmp/$t" "./$t"
      install_built "$t"
      ;;
  esac
done
echo "==> test binaries ready in $BIN"

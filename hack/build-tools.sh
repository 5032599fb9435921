#!/usr/bin/env bash
# Builds the test environment's Go binaries into a cache outside the repo, keyed by version, so
# a second run is instant. Sources come from the Go module proxy only (see docs/testenv.md).
# Usage: hack/build-tools.sh [k8s|keda|prometheus-adapter|etcd|kwok|helm|crds|stages|kafka|prometheus|all]   (default: all)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.7.0}"
HELM_VERSION="${HELM_VERSION:-3.21.4}"
ISTIO_API_VERSION="${ISTIO_API_VERSION:-1.30.8}"
KEDA_VERSION="${KEDA_VERSION:-2.20.1}"
KUBEEDGE_VERSION="${KUBEEDGE_VERSION:-1.23.0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-1.6.3}"  # v1.7 needs a newer Go than the proxy's toolchain here
# The inference extension's module proxy serves exact versions only (no version list): v1.6.0 is the
# newest served on 2026-11-29 (v1.4.1, v1.5.1, v1.6.1, v1.7.0 refused).
INFERENCE_EXTENSION_VERSION="${INFERENCE_EXTENSION_VERSION:-1.6.0}"
# The custom metrics API for HPA mode. Its module proxy serves exact versions only (no version list);
# v0.12.0 is its newest tag on 2026-11-29. Its go.mod has no replace lines, so it builds as it is.
PROMETHEUS_ADAPTER_VERSION="${PROMETHEUS_ADAPTER_VERSION:-0.12.0}"
CACHE="${AUTOGLM_CACHE:-$HOME/.cache/autoglm-testenv}"
HERE="$(cd "${0%/*}" && pwd)"

die() { echo "build-tools: $*" >&2; exit 1; }
log() { echo "build-tools: [$(date -u +%H:%M:%S)] $*" >&2; }
need_go() { command -v go >/dev/null || die "no Go toolchain on PATH: install Go >= 1.24 (https://go.dev/doc/install) and retry"; }
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

# module_dir MODULE VERSION -> prints the read-only module cache directory of that module version.
module_dir() {
  need_go
  go mod download -json "$1@$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])' \
    || die "cannot download Go module $1@$2 (is the Go module proxy reachable? check GOPROXY=$(go env GOPROXY))"
}

# wrapper DIR MODULE_LINE... -> a throwaway module that only exists to build other modules' mains.
wrapper() {
  local dir="$1"; shift
  mkdir -p "$dir"
  printf 'module autoglm.local/build\n\ngo 1.24.0\n\ngodebug default=go1.24\n' > "$dir/go.mod"
}

build_k8s() {
  local out="$CACHE/k8s-v$K8S_VERSION"
  if [[ -x "$out/bin/kube-apiserver" && -x "$out/bin/kubectl" && -x "$out/bin/kube-controller-manager" && -x "$out/bin/kube-scheduler" ]]; then
    log "kubernetes v$K8S_VERSION cached in $out"; return
  fi
  log "building kubernetes v$K8S_VERSION (cold: 10-25 min on 2 cores)"
  local src="$out/src"; wrapper "$src"
  local kdir; kdir=$(module_dir k8s.io/kubernetes "v$K8S_VERSION")
  {
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    # Every staging module (k8s.io/X => ./staging/src/k8s.io/X) maps to its published v0.MINOR.PATCH.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$kdir/go.mod" \
      | awk -v v="v0.${K8S_VERSION#1.}" '{print "replace " $1 " => " $1 " " v}'
  } >> "$src/go.mod"
  local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$now -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  done
  mkdir -p "$out/bin"
  (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  log "kubernetes v$K8S_VERSION built in $out/bin"
}

# build_simple NAME MODULE VERSION PKG... : modules that build as they are (no replace lines).
build_simple() {
  local name="$1" module="$2" version="$3"; shift 3
  local out="$CACHE/$name-v$version"
  if [[ -f "$out/.done" ]]; then log "$name v$version cached in $out"; return; fi
  need_go
  log "building $name v$version"
  local src="$out/src"; wrapper "$src"
  echo "require $module v$version" >> "$src/go.mod"
  mkdir -p "$out/bin"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/bin/" "$@")
  touch "$out/.done"
  log "$name v$version built in $out/bin"
}

# KEDA's three mains (operator, external-metrics adapter, admission webhooks). Like Kubernetes, its
# go.mod pins dependencies with replace lines that only apply to the main module, so the throwaway
# module repeats them (version-only replaces; read from the tagged go.mod, never hand-copied).
build_keda() {
  local out="$CACHE/keda-v$KEDA_VERSION"
  if [[ -f "$out/.done" ]]; then log "keda v$KEDA_VERSION cached in $out"; return; fi
  log "building keda v$KEDA_VERSION (cold: 15-30 min on 2 cores)"
  local src="$out/src"; wrapper "$src"
  local kdir; kdir=$(module_dir github.com/kedacore/keda/v2 "v$KEDA_VERSION")
  # KEDA declares a newer go line than Kubernetes (go 1.26.0 at v2.20.1); the wrapper repeats it,
  # and with GOTOOLCHAIN=local an older Go cannot build it: say so instead of Go's own message.
  local want; want=$(awk '/^go /{print $2; exit}' "$kdir/go.mod")
  local have; have=$(go env GOVERSION | sed 's/^go//')
  [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" == "$want" ]] \
    || die "keda v$KEDA_VERSION needs Go >= $want, this Go is $have (https://go.dev/doc/install)"
  sed -i "s/^go .*/go $want/; /^godebug/d" "$src/go.mod"
  {
    echo "require github.com/kedacore/keda/v2 v$KEDA_VERSION"
    # The replace block's "A => A vX" lines (inside "replace (" ... ")").
    awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=>/{print "replace " $1 " => " $3 " " $4}' "$kdir/go.mod"
  } >> "$src/go.mod"
  local ld="-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION"
  mkdir -p "$out/bin"
  (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out/bin/" \
      github.com/kedacore/keda/v2/cmd/operator github.com/kedacore/keda/v2/cmd/adapter \
      github.com/kedacore/keda/v2/cmd/webhooks)
  # All of KEDA's CRDs (its operator watches ScaledJobs and CloudEventSources too), and its admission
  # webhooks' registration (rules and paths; the testenv points it at 127.0.0.1). Copied last: the
  # testenv takes validation_webhooks.yaml as the sign of a complete build.
  mkdir -p "$out/crds"
  cp "$kdir"/config/crd/bases/*.yaml "$out/crds/"
  cp "$kdir/config/webhooks/validation_webhooks.yaml" "$out/"
  chmod u+w "$out/validation_webhooks.yaml" "$out"/crds/*.yaml
  touch "$out/.done"
  log "keda v$KEDA_VERSION built in $out/bin"
}

# CRDs are copied out of the projects' own Go modules (never committed to this repo).
fetch_crds() {
  local out="$CACHE/crds-istio$ISTIO_API_VERSION-keda$KEDA_VERSION-kubeedge$KUBEEDGE_VERSION-gateway$GATEWAY_API_VERSION-gie$INFERENCE_EXTENSION_VERSION"
  if [[ -f "$out/.done" ]]; then log "third-party CRDs cached in $out"; return; fi
  mkdir -p "$out"
  local d
  d=$(module_dir istio.io/api "v$ISTIO_API_VERSION")
  cp "$d/kubernetes/customresourcedefinitions.gen.yaml" "$out/istio.yaml"
  d=$(module_dir github.com/kedacore/keda/v2 "v$KEDA_VERSION")
  cp "$d/config/crd/bases/keda.sh_scaledobjects.yaml" "$out/keda-scaledobjects.yaml"
  cp "$d/config/crd/bases/keda.sh_triggerauthentications.yaml" "$out/keda-triggerauthentications.yaml"
  d=$(module_dir github.com/kubeedge/kubeedge "v$KUBEEDGE_VERSION")
  cp "$d/build/crds/apps/apps_v1alpha1_nodegroup.yaml" "$out/kubeedge-nodegroup.yaml"
  cp "$d/build/crds/apps/apps_v1alpha1_edgeapplication.yaml" "$out/kubeedge-edgeapplication.yaml"
  # Gateway API standard channel (HTTPRoute with RequestMirror percent since v1.3) and InferencePool v1.
  d=$(module_dir sigs.k8s.io/gateway-api "v$GATEWAY_API_VERSION")
  for kind in gatewayclasses gateways httproutes referencegrants; do
    cp "$d/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$out/gateway-api-$kind.yaml"
  done
  d=$(module_dir sigs.k8s.io/gateway-api-inference-extension "v$INFERENCE_EXTENSION_VERSION")
  cp "$d/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml" "$out/inference-extension-inferencepools.yaml"
  chmod u+w "$out"/*.yaml
  touch "$out/.done"
  log "third-party CRDs copied to $out"
}

# kwok's own pod Stage definitions (its "fast" set), which the testenv gives a per-pod Ready delay.
fetch_kwok_stages() {
  local out="$CACHE/kwok-stages-v$KWOK_VERSION"
  if [[ -f "$out/.done" ]]; then log "kwok stages cached in $out"; return; fi
  mkdir -p "$out"
  local d; d=$(module_dir sigs.k8s.io/kwok "v$KWOK_VERSION")
  cp "$d"/kustomize/stage/pod/fast/pod-*.yaml "$out/"
  chmod u+w "$out"/*.yaml
  touch "$out/.done"
  log "kwok stages copied to $out"
}

# Kafka broker jars from Maven Central (hack/kafka/pom.xml lists them).
fetch_kafka() {
  command -v java >/dev/null || die "no Java on PATH: Kafka needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "no Maven on PATH: needed to fetch the Kafka jars (Debian: apt-get install maven)"
  local version; version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")
  local out="$CACHE/kafka-$version"
  if [[ -f "$out/.done" ]]; then log "kafka $version cached in $out"; return; fi
  log "fetching kafka $version jars from Maven Central"
  mkdir -p "$out/libs"
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$out/libs" || die "maven could not fetch the Kafka jars (is Maven Central reachable?)"
  touch "$out/.done"
  log "kafka $version jars in $out/libs"
}

# Prometheus from Debian's package, unpacked (not installed: the package would start a service).
fetch_prometheus() {
  local out="$CACHE/prometheus-deb"
  if [[ -x "$out/usr/bin/prometheus" ]]; then log "prometheus cached in $out"; return; fi
  command -v apt-get >/dev/null || die "no apt-get: install a prometheus 2.x binary and set AUTOGLM_PROMETHEUS_BIN"
  log "fetching Debian's prometheus package"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null && (cd "$tmp" && apt-get download prometheus); } \
    || die "apt-get could not download prometheus (is the Debian mirror reachable?)"
  mkdir -p "$out"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$out"
  rm -rf "$tmp"
  log "prometheus unpacked in $out"
}

what="${1:-all}"
case "$what" in
  k8s) build_k8s ;;
  keda) build_keda ;;
  etcd)
    build_simple etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
    # etcd's main package is its module root, so go names the binary "server".
    bin="$CACHE/etcd-v$ETCD_VERSION/bin"; [[ -f "$bin/server" ]] && mv -f "$bin/server" "$bin/etcd"; true ;;
  kwok) build_simple kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok ;;
  helm) build_simple helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
  prometheus-adapter)
    build_simple prometheus-adapter sigs.k8s.io/prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" \
      sigs.k8s.io/prometheus-adapter/cmd/adapter ;;
  crds) fetch_crds ;;
  stages) fetch_kwok_stages ;;
  kafka) fetch_kafka ;;
  prometheus) fetch_prometheus ;;
  all)
    fetch_crds; fetch_kwok_stages; fetch_kafka; fetch_prometheus
    # Two build lanes at once: one Go build alone leaves a core idle while it links a binary, waits
    # on the module proxy or compiles a package everything else depends on. Kubernetes + adapter
    # and etcd + kwok + helm + KEDA take about the same CPU time cold. A failed lane fails the
    # target; the other lane is stopped then (no half-built cache entry: each is marked done last).
    set -m  # the lane gets its own process group, so stopping it stops its go build too
    ( "$0" k8s && "$0" prometheus-adapter ) & lane=$!
    set +m
    trap 'kill -- -"$lane" 2>/dev/null || true' EXIT
    "$0" etcd; "$0" kwok; "$0" helm; "$0" keda
    wait "$lane" || die "the kubernetes / prometheus-adapter build failed (its messages are above)"
    trap - EXIT ;;
  *) die "unknown target '$what' (use k8s, keda, prometheus-adapter, etcd, kwok, helm, crds, stages, kafka, prometheus or all)" ;;
esac

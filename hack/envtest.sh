#!/usr/bin/env bash
# Ensure the test control plane's binaries exist and print their folder.
#
# The integration tests run a real etcd + kube-apiserver as local processes
# (envtest style), and drive them with kubectl and helm. Their versions are
# pinned by the Go modules beside this script (hack/envtest/go.mod,
# hack/envtest/etcd/go.mod) and helm's tag below; each binary is built once
# from source into a per-version cache outside the checkout.
#
# Output: the LAST line of stdout is the absolute path of a folder holding
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# helm (the KUBEBUILDER_ASSETS layout: one folder, one binary per component).
# The controller manager and the scheduler are only started by the tests that
# observe garbage collection, role aggregation or namespace deletion.
# Progress and errors go to stderr.
#
# Environment:
#   KUBEBUILDER_ASSETS  a folder that already holds all of them: used as is.
#   WT_ENVTEST_CACHE    cache root (default ${XDG_CACHE_HOME:-~/.cache}/wt-envtest).
#
# A warm cache costs a few stat calls (no `go` invocation). Builds go to a
# temporary file renamed into place, so an interrupted build never leaves a
# half-written binary, and a lock keeps concurrent invocations from building
# the same thing twice.
set -euo pipefail

K8S_VERSION=1.37.2
ETCD_VERSION=3.7.3
HELM_VERSION=3.19.0
# The Kubernetes minor of helm's own client-go (helm.sh/helm/v3 go.mod): helm's release
# build stamps it as the version `helm template`/`lint` assume without --kube-version, and the
# chart's kubeVersion is checked against it (unstamped, helm assumes 1.20).
HELM_KUBE_MINOR=34
# Bump when a build flag changes, so binaries built the old way are not reused.
RECIPE=2
TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl helm)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

TOOL=envtest
# shellcheck source=hack/lib/tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tool-cache.sh"

# missing DIR: print the tools absent (or not executable) in DIR, space-separated.
missing() {
	local dir=$1 tool out=()
	for tool in "${TOOLS[@]}"; do
		[[ -f $dir/$tool && -x $dir/$tool ]] || out+=("$tool")
	done
	printf '%s' "${out[*]:-}"
}

if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
	absent="$(missing "$KUBEBUILDER_ASSETS")"
	if [[ -z $absent ]]; then
		(cd "$KUBEBUILDER_ASSETS" && pwd)
		exit 0
	fi
	log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks: $absent; using the build cache instead"
fi

root="$(cache_root)"
dir="$root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-r$RECIPE"

# Warm path: nothing but stat calls.
if [[ -z "$(missing "$dir")" ]]; then
	(cd "$dir" && pwd)
	exit 0
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

lock_cache "$dir"

absent="$(missing "$dir")"
if [[ -n $absent ]]; then
	if ! command -v go >/dev/null 2>&1; then
		die "go is required to build ${absent// /, } (missing from $dir); install Go >=1.26 or set KUBEBUILDER_ASSETS to a folder holding ${TOOLS[*]}"
	fi
	log "building $absent into $dir (first run only; about 10-20 minutes on 2 cores)"
fi

scratch="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# Kubernetes' own release builds stamp the version; without it the binaries
# report v0.0.0-master, which kubectl's skew warning and helm's kubeVersion
# checks would trip over.
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
k8s_minor="${K8S_VERSION#*.}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=${k8s_minor%%.*}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
for pkg in chartutil lint/rules; do
	helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1"
	helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$HELM_KUBE_MINOR"
done

build() {
	local tool=$1 start=$SECONDS
	[[ -x $dir/$tool ]] && return 0
	log "building $tool"
	case $tool in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		(cd "$here/envtest" && go build -trimpath -ldflags="$k8s_ldflags" \
			-o "$scratch/$tool" "k8s.io/kubernetes/cmd/$tool") >&2
		;;
	etcd)
		(cd "$here/envtest/etcd" && go build -trimpath -ldflags='-s -w' \
			-o "$scratch/$tool" go.etcd.io/etcd/server/v3) >&2
		;;
	helm)
		(cd "$here/envtest" && GOBIN="$scratch" go install -trimpath \
			-ldflags="$helm_ldflags" \
			"helm.sh/helm/v3/cmd/helm@v$HELM_VERSION") >&2
		;;
	esac
	chmod +x "$scratch/$tool"
	mv -f "$scratch/$tool" "$dir/$tool"
	log "built $tool in $((SECONDS - start)) s"
}

for tool in "${TOOLS[@]}"; do
	build "$tool"
done

absent="$(missing "$dir")"
[[ -z $absent ]] || die "still missing after the build: $absent (see the messages above)"
printf '%s\n' "$dir"

#!/usr/bin/env bash
# Ensure the OLDEST supported Kubernetes minor's kube-apiserver exists and print a
# folder in the envtest layout that uses it.
#
# The chart declares kubeVersion ">=1.32.0-0" (docs/chart.md says why 1.32); the
# version-matrix tests start this folder's control plane beside the current one and
# apply the CRDs, the chart and a run to it. Only kube-apiserver differs: etcd,
# kubectl and helm are the current ones from hack/envtest.sh, linked in (etcd 3.7
# serves the v3 API an older kube-apiserver speaks; kubectl warns about the skew on
# stderr and works).
#
# Output: the LAST line of stdout is the folder. Progress and errors go to stderr.
# Environment: WT_ENVTEST_CACHE as for hack/envtest.sh.
set -euo pipefail

OLDEST_K8S_VERSION=1.32.13

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL=envtest-oldest
# shellcheck source=hack/lib/tool-cache.sh
source "$here/lib/tool-cache.sh"

current="$(KUBEBUILDER_ASSETS='' bash "$here/envtest.sh" | tail -n 1)"
[[ -d $current ]] || die "hack/envtest.sh printed no folder"

dir="$(cache_root)/k8s-$OLDEST_K8S_VERSION-apiserver"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

link_current() {
	local tool
	for tool in etcd kubectl helm; do
		ln -sfn "$current/$tool" "$dir/$tool"
	done
}

if [[ -x $dir/kube-apiserver ]]; then
	link_current
	printf '%s\n' "$dir"
	exit 0
fi

lock_cache "$dir"
if [[ ! -x $dir/kube-apiserver ]]; then
	command -v go >/dev/null 2>&1 || die "go is required to build kube-apiserver $OLDEST_K8S_VERSION"
	log "building kube-apiserver $OLDEST_K8S_VERSION into $dir (first run only; a few minutes)"
	start=$SECONDS
	scratch="$(mktemp -d "$dir/.build.XXXXXX")"
	trap 'rm -rf "$scratch"' EXIT
	minor="${OLDEST_K8S_VERSION#*.}"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$OLDEST_K8S_VERSION"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=${OLDEST_K8S_VERSION%%.*}"
	ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
	ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
	(cd "$here/envtest/k8s-${OLDEST_K8S_VERSION%.*}" && go build -trimpath -ldflags="$ldflags" \
		-o "$scratch/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
	mv -f "$scratch/kube-apiserver" "$dir/kube-apiserver"
	log "built kube-apiserver $OLDEST_K8S_VERSION in $((SECONDS - start)) s"
fi
link_current
printf '%s\n' "$dir"

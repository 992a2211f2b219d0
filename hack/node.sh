#!/usr/bin/env bash
# Ensure the test node's tools exist and print their folder.
#
# The node tier (tests/node) runs a real kubelet with containerd beside the test control
# plane, so that the chart's pods really run: probes, read-only root, the projected token,
# the runner container. This script builds, once, into a per-version cache outside the
# checkout (hack/lib/tool-cache.sh):
#   kubelet   from the same Kubernetes release as hack/envtest.sh (hack/envtest/go.mod)
#   runc      1.5 with the seccomp build tag: Debian's runc 1.1 fails silently to start
#             containers under this containerd; 1.5 works
#   pause     the sandbox image, a tiny static binary, as an OCI archive (pause.oci.tar)
# and installs with apt-get, when absent (CI runs as root on a possibly fresh Debian):
#   containerd (its CRI plugin), containernetworking-plugins (bridge, host-local,
#   loopback), libseccomp-dev (runc's seccomp tag links it), iptables.
#
# Output: the LAST line of stdout is the folder holding kubelet, runc, pause.oci.tar.
# Go builds run under `nice -n 10`: the machine is shared with other test runs.
set -euo pipefail

K8S_VERSION=1.37.2
RUNC_VERSION=1.5.3
# Bump when a build flag changes, so binaries built the old way are not reused.
RECIPE=1
PAUSE_IMAGE=localhost/wt-pause:1
FILES=(kubelet runc pause.oci.tar)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOL=node
# shellcheck source=hack/lib/tool-cache.sh
source "$here/lib/tool-cache.sh"

missing() {
	local dir=$1 f out=()
	for f in "${FILES[@]}"; do
		[[ -s $dir/$f ]] || out+=("$f")
	done
	printf '%s' "${out[*]:-}"
}

apt_packages() {
	local need=()
	command -v containerd >/dev/null 2>&1 || need+=(containerd)
	[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
	[[ -e /usr/include/seccomp.h ]] || need+=(libseccomp-dev)
	command -v iptables >/dev/null 2>&1 || need+=(iptables)
	((${#need[@]} == 0)) && return 0
	if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "missing ${need[*]}: install them (Debian packages of those names) and rerun"
	fi
	log "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends "${need[@]}" >&2; }
}

apt_packages

root="$(cache_root)"
dir="$root/node-k8s-$K8S_VERSION-runc-$RUNC_VERSION-r$RECIPE"
if [[ -z "$(missing "$dir")" ]]; then
	(cd "$dir" && pwd)
	exit 0
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
lock_cache "$dir"
command -v go >/dev/null 2>&1 || die "go is required to build $(missing "$dir") into $dir; install Go >=1.26"

scratch="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*}"
k8s_minor="${K8S_VERSION#*.}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=${k8s_minor%%.*}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

build() {
	local f=$1 start=$SECONDS
	[[ -s $dir/$f ]] && return 0
	log "building $f"
	case $f in
	kubelet)
		(cd "$here/envtest" && nice -n 10 go build -trimpath -ldflags="$k8s_ldflags" \
			-o "$scratch/$f" k8s.io/kubernetes/cmd/kubelet) >&2
		;;
	runc)
		(cd "$scratch" && GOBIN="$scratch" CGO_ENABLED=1 nice -n 10 go install -trimpath \
			-tags seccomp -ldflags="-s -w -X main.version=$RUNC_VERSION" \
			"github.com/opencontainers/runc@v$RUNC_VERSION") >&2
		;;
	pause.oci.tar)
		(cd "$here/node/pause" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
			-ldflags='-s -w' -o "$scratch/pause" .) >&2
		python3 "$here/node/pause_image.py" "$scratch/pause" "$scratch/$f" "$PAUSE_IMAGE"
		;;
	esac
	mv -f "$scratch/$f" "$dir/$f"
	log "built $f in $((SECONDS - start)) s"
}

for f in "${FILES[@]}"; do
	build "$f"
done
printf '%s\n' "$PAUSE_IMAGE" >"$dir/pause.image"
[[ -z "$(missing "$dir")" ]] || die "still missing after the build: $(missing "$dir")"
printf '%s\n' "$dir"

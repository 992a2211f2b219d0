#!/usr/bin/env bash
# Ensure distribution's OCI registry (`registry`) exists and print its path.
#
# The release tests (tests/integration/test_release.py) push the operator image and the
# chart to a real registry server on 127.0.0.1 and install from it, as users install from
# ghcr.io or Artifact Registry. It is built once from the pinned module version below into
# a per-version cache outside the checkout (next to hack/envtest.sh's binaries, same locking
# and atomic rename).
#
# Output: the LAST line of stdout is the absolute path of the registry binary.
# Progress and errors go to stderr.
#
# Environment:
#   WT_REGISTRY         a registry binary to use as is.
#   WT_ENVTEST_CACHE    cache root (default ${XDG_CACHE_HOME:-~/.cache}/wt-envtest).
set -euo pipefail

DISTRIBUTION_VERSION=v3.1.2

TOOL=registry
# shellcheck source=hack/lib/tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tool-cache.sh"

if [[ -n ${WT_REGISTRY:-} ]]; then
	[[ -x $WT_REGISTRY ]] || die "WT_REGISTRY=$WT_REGISTRY is not an executable file"
	printf '%s\n' "$WT_REGISTRY"
	exit 0
fi

dir="$(cache_root)/registry-$DISTRIBUTION_VERSION"
bin="$dir/registry"

# Warm path: one stat call.
if [[ -x $bin ]]; then
	printf '%s\n' "$(cd "$dir" && pwd)/registry"
	exit 0
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
bin="$dir/registry"

lock_cache "$dir"

if [[ ! -x $bin ]]; then
	command -v go >/dev/null 2>&1 ||
		die "go is required to build the registry (missing from $dir); install Go >=1.26 or set WT_REGISTRY"
	log "building distribution's registry $DISTRIBUTION_VERSION into $dir (first run only; a few minutes)"
	scratch="$(mktemp -d "$dir/.build.XXXXXX")"
	trap 'rm -rf "$scratch"' EXIT
	start=$SECONDS
	# `go install pkg@version` builds with the versions distribution's own go.mod pins;
	# the cloud storage drivers are opt-in build tags, left out (the tests use the filesystem).
	GOBIN="$scratch" GOFLAGS=-buildvcs=false go install -trimpath -ldflags='-s -w' \
		"github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION" >&2
	mv -f "$scratch/registry" "$bin"
	log "built registry in $((SECONDS - start)) s"
fi

[[ -x $bin ]] || die "registry still missing after the build (see the messages above)"
printf '%s\n' "$bin"

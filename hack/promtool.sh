#!/usr/bin/env bash
# Ensure Prometheus' promtool exists and print its path.
#
# The chart's PrometheusRule and Grafana dashboard are checked by the real
# `promtool check rules` / `promtool query` parser (tests/unit/test_chart_render.py),
# not by a hand-written imitation. promtool is a Go module with no release
# binaries reachable from here, so it is built once from source, at the pinned
# module version below, into a per-version cache outside the checkout (next to
# hack/envtest.sh's binaries, same locking and atomic rename).
#
# Output: the LAST line of stdout is the absolute path of the promtool binary.
# Progress and errors go to stderr.
#
# Environment:
#   WT_PROMTOOL         a promtool binary to use as is.
#   WT_ENVTEST_CACHE    cache root (default ${XDG_CACHE_HOME:-~/.cache}/wt-envtest).
set -euo pipefail

# Prometheus' Go module tags v0.3XX.Y are its releases 3.XX.Y.
PROMETHEUS_MODULE_VERSION=v0.316.0

TOOL=promtool
# shellcheck source=hack/lib/tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tool-cache.sh"

if [[ -n ${WT_PROMTOOL:-} ]]; then
	[[ -x $WT_PROMTOOL ]] || die "WT_PROMTOOL=$WT_PROMTOOL is not an executable file"
	printf '%s\n' "$WT_PROMTOOL"
	exit 0
fi

root="$(cache_root)"
dir="$root/promtool-$PROMETHEUS_MODULE_VERSION"
bin="$dir/promtool"

# Warm path: one stat call.
if [[ -x $bin ]]; then
	printf '%s\n' "$(cd "$dir" && pwd)/promtool"
	exit 0
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
bin="$dir/promtool"

lock_cache "$dir"

if [[ ! -x $bin ]]; then
	command -v go >/dev/null 2>&1 ||
		die "go is required to build promtool (missing from $dir); install Go >=1.26 or set WT_PROMTOOL"
	log "building promtool $PROMETHEUS_MODULE_VERSION into $dir (first run only; a few minutes)"
	scratch="$(mktemp -d "$dir/.build.XXXXXX")"
	trap 'rm -rf "$scratch"' EXIT
	start=$SECONDS
	# `go install pkg@version` builds outside any module, with the versions
	# prometheus' own go.mod pins (it has no replace directives, so this works).
	# remove_all_sd: rule and query checks need none of the service-discovery plugins
	# (cloud SDKs, client-go), which are most of promtool's build time.
	GOBIN="$scratch" GOFLAGS=-buildvcs=false go install -trimpath -tags remove_all_sd -ldflags='-s -w' \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
	mv -f "$scratch/promtool" "$bin"
	log "built promtool in $((SECONDS - start)) s"
fi

[[ -x $bin ]] || die "promtool still missing after the build (see the messages above)"
printf '%s\n' "$bin"

# shellcheck shell=bash
# Sourced by the hack/*.sh scripts that build or install a test tool once into a cache
# outside the checkout: their messages, where the cache is, and one builder at a time.
#
# Set TOOL (the name messages start with) before sourcing.
#   WT_ENVTEST_CACHE    cache root (default ${XDG_CACHE_HOME:-~/.cache}/wt-envtest).

log() { printf '%s: %s\n' "$TOOL" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$TOOL" "$*" >&2
	exit 1
}

# The cache root every tool's per-version folder lives in.
cache_root() {
	printf '%s\n' "${WT_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wt-envtest}"
}

# lock_cache DIR: hold DIR/.lock until the script exits, waiting while another run
# (another checkout, a parallel test) builds into DIR; it then finds the work done.
lock_cache() {
	local dir=$1
	if ! command -v flock >/dev/null 2>&1; then
		log "flock not found: no build lock (concurrent runs may build twice, safely)"
		return 0
	fi
	exec 9>"$dir/.lock"
	if ! flock -n 9; then
		log "another run is building into $dir; waiting for it"
		flock 9
	fi
}

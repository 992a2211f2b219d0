#!/usr/bin/env bash
# Ensure checkov (an independent Kubernetes policy scanner, from PyPI) exists and print
# the path of its executable.
#
# tests/integration/test_chart.py scans the chart's rendered manifests with it. checkov
# pins dozens of packages of its own (boto3, an old `packaging`, ...), so it lives in its
# own virtualenv in the tool cache outside the checkout, not in the project's .venv.
#
# Output: the LAST line of stdout is the absolute path of the checkov executable.
# Environment:
#   WT_CHECKOV          a checkov executable to use as is.
#   WT_ENVTEST_CACHE    cache root (default ${XDG_CACHE_HOME:-~/.cache}/wt-envtest).
#   PYTHON              interpreter for the virtualenv (default python3).
set -euo pipefail

CHECKOV_VERSION=3.3.30

TOOL=checkov
# shellcheck source=hack/lib/tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tool-cache.sh"

if [[ -n ${WT_CHECKOV:-} ]]; then
	[[ -x $WT_CHECKOV ]] || die "WT_CHECKOV=$WT_CHECKOV is not an executable file"
	printf '%s\n' "$WT_CHECKOV"
	exit 0
fi

root="$(cache_root)"
dir="$root/checkov-$CHECKOV_VERSION"
bin="$dir/venv/bin/checkov"

# Warm path: the marker is written only after a complete install.
if [[ -f $dir/.installed && -x $bin ]]; then
	printf '%s\n' "$(cd "$dir" && pwd)/venv/bin/checkov"
	exit 0
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
bin="$dir/venv/bin/checkov"

lock_cache "$dir"

if [[ ! -f $dir/.installed ]]; then
	log "installing checkov $CHECKOV_VERSION into $dir/venv (first run only)"
	rm -rf "$dir/venv"
	"${PYTHON:-python3}" -m venv "$dir/venv"
	"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		"checkov==$CHECKOV_VERSION" >&2
	touch "$dir/.installed"
fi

[[ -x $bin ]] || die "checkov missing after the install (see the messages above)"
printf '%s\n' "$bin"

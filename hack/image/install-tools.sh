#!/bin/sh
# Installs what `make image` and tests/image need, from Debian, when missing: buildah
# (builds the image, daemonless), mmdebstrap (makes the local base image) and runc (runs
# the image in the smoke test; crun refuses this machine's hybrid cgroup layout).
# Without apt-get or root it only says what is missing: `make test` then skips the image
# outside CI and fails in CI.
set -eu
missing=
for tool in buildah mmdebstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "image tools missing:$missing (install them, e.g. apt-get install$missing)" >&2
    exit 0
fi
echo "installing$missing (apt-get)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null

#!/usr/bin/env bash
# Copy the generated CRDs (crds/*.yaml, the one source of truth written by
# hack/gen_crd.py) into the Helm chart, which renders them from
# charts/wt-operator/files/crds/ behind crds.install / crds.keep.
# tests/unit/test_chart_render.py fails when the copies differ.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/charts/wt-operator/files/crds"
mkdir -p "$dest"
# Drop copies whose source is gone, so a removed CRD is not still installed.
for copy in "$dest"/*.yaml; do
  [[ -e "$copy" ]] || continue
  [[ -e "$root/crds/$(basename "$copy")" ]] || rm -- "$copy"
done
cp -- "$root"/crds/*.yaml "$dest/"

#!/usr/bin/env bash
# Copy the CRDs of crds/ (the one source of truth; the WorkflowRun CRD is written by
# hack/gen_crd.py) into the Helm chart:
#   - the WorkflowRun CRD into charts/wt-operator/files/crds/, rendered by a template behind
#     crds.install / crds.keep, so `helm upgrade` upgrades it;
#   - kopf's peering CRDs into charts/wt-operator/crds/, which Helm installs before anything
#     else: on a first install with replicaCount > 1 the release's peering object needs them
#     (Helm resolves every kind of a release before creating any object). kopf's CRDs are
#     stable, so Helm never upgrading them is no loss.
# tests/unit/test_chart_render.py fails when the copies differ.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
templated="$root/charts/wt-operator/files/crds"
first="$root/charts/wt-operator/crds"
mkdir -p "$templated" "$first"
# Drop copies whose source is gone, so a removed CRD is not still installed.
for copy in "$templated"/*.yaml "$first"/*.yaml; do
  [[ -e "$copy" ]] || continue
  [[ -e "$root/crds/$(basename "$copy")" ]] || rm -- "$copy"
done
for source in "$root"/crds/*.yaml; do
  case "$(basename "$source")" in
    kopf.*) cp -- "$source" "$first/" ;;
    *) cp -- "$source" "$templated/" ;;
  esac
done

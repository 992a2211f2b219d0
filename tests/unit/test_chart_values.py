"""The chart's names, CRDs and values schema: what helm accepts, refuses and installs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.chart import CHART, MONITORING, ROOT, by_kind, render, render_error, run


@pytest.mark.parametrize(
    "sets",
    [[], ["nameOverride=" + "n" * 70], ["fullnameOverride=" + "f" * 70]],
    ids=["release", "nameOverride", "fullnameOverride"],
)
def test_names_are_truncated_to_63_characters(helm: Path, sets: list[str]) -> None:
    docs = render(
        helm,
        *sets,
        # Every object the chart names (extraObjects are named by their author).
        "replicaCount=2",
        "podDisruptionBudget.enabled=true",
        "batch.allowedProjects={p}",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
        release="r" * 53,  # helm's maximum release name
        api_versions=(MONITORING,),
    )
    names = [d["metadata"]["name"] for d in docs]
    names += [
        d["spec"]["template"]["spec"]["serviceAccountName"]
        for d in docs
        if d["kind"] == "Deployment"
    ]
    labels = [v for d in docs for v in (d["metadata"].get("labels") or {}).values()]
    assert max(len(n) for n in names) == 63  # truncated, not merely short
    assert all(len(v) <= 63 for v in labels), labels
    assert all(not n.endswith("-") for n in names)
    # Cut before the suffix: the view/edit/admin roles, policies, ... stay distinct.
    for kind in {d["kind"] for d in docs}:
        same_kind = [
            (d["metadata"].get("namespace"), d["metadata"]["name"])
            for d in docs
            if d["kind"] == kind
        ]
        assert len(same_kind) == len(set(same_kind)), kind


def test_a_70_character_release_name_is_refused_by_helm(helm: Path) -> None:
    proc = run(helm, "template", "r" * 70, str(CHART), check=False)
    assert proc.returncode != 0
    assert "release name" in proc.stderr and "53" in proc.stderr


def test_crds_install_keep_and_opt_out(helm: Path) -> None:
    crds = by_kind(render(helm), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == {
        "workflowruns.wt.dev",
        "workflowschedules.wt.dev",
    }
    # kopf's peering CRDs come from crds/: installed by helm before anything else.
    first = by_kind(render(helm, "replicaCount=2", include_crds=True), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in first} == {
        "workflowruns.wt.dev",
        "workflowschedules.wt.dev",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    unkept = by_kind(render(helm, "crds.keep=false"), "CustomResourceDefinition")
    assert all(
        "helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {}) for c in unkept
    )
    assert not by_kind(render(helm, "crds.install=false"), "CustomResourceDefinition")


def test_chart_crds_are_the_ones_in_crds() -> None:
    sources = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    templated = {p.name: p for p in (CHART / "files" / "crds").glob("*.yaml")}
    first = {p.name: p for p in (CHART / "crds").glob("*.yaml")}
    fix = "run `make crds` (hack/sync_chart_crds.sh)"
    assert sorted([*templated, *first]) == sources, fix
    assert set(first) == {n for n in sources if n.startswith("kopf.")}
    for name, copy in {**templated, **first}.items():
        assert copy.read_text() == (ROOT / "crds" / name).read_text(), f"{copy} is stale: {fix}"


def test_every_value_is_documented_in_values_and_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    leaves: set[str] = set()

    def walk(node: dict[str, Any], vals: dict[str, Any], path: str) -> None:
        props = node["properties"]
        assert props.keys() == vals.keys(), path
        for key, sub in props.items():
            assert sub.get("description"), f"{path}{key} has no description"
            if sub.get("additionalProperties") is False:
                walk(sub, vals[key], f"{path}{key}.")
            else:
                leaves.add(f"{path}{key}")

    assert schema["additionalProperties"] is False
    walk(schema, values, "")
    # Each value in values.yaml has a `# --` doc comment right above it (helm-docs' style).
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    documented = set()
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        found = re.match(r"^(\s*)([A-Za-z_]\w*):", line)
        if found:
            indent = len(found[1])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, found[2])]
            path = ".".join(k for _, k in stack)
            if path in leaves and any(c.startswith("# --") for c in comment):
                documented.add(path)
        comment = []
    assert leaves - documented == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicaCount=two", "replicaCount"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("operator.localLauncher=docker", "localLauncher"),
        ("operator.logFormat=xml", "logFormat"),
        ("watch.namespaces={Bad_Name}", "namespaces"),
        ("batch.allowedImages={a,b,a}", "allowedImages"),
        ("operator.allowedEnv={A.B}", "allowedEnv"),
        ("operator.workflowEnv.A-B=x", "invalid propertyName 'A-B'"),
        ("operator.localResultsRoot=results", "localResultsRoot"),
        ("networkPolicy.ingress=[]", "additional properties 'ingress' not allowed"),
        ("metrics.prometheusRule.runsFailing.for=soon", "for"),
    ],
)
def test_invalid_values_fail_with_a_schema_error(helm: Path, value: str, message: str) -> None:
    assert message in render_error(helm, value)

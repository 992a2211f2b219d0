"""The chart's monitoring: ServiceMonitor, alert rules and the Grafana dashboard.

Alert rules and dashboard queries are checked by the real Prometheus ``promtool``
(built once by hack/promtool.sh), and their metric names against the operator's own
registry, so renaming a series breaks these tests rather than an on-call's night.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.chart import EVERYTHING, MONITORING, by_kind, prometheus_rule_groups, render
from wt_operator.metrics import Metrics


def test_service_monitor_labels_and_annotations(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING, api_versions=(MONITORING,))
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["metadata"]["annotations"] == {"example.com/owner": "platform"}
    (service,) = by_kind(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


def operator_metric_names() -> set[str]:
    """Every series name the operator exports, from its own registry."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bwt_[a-z_]+\b", expr))


def promtool_check(promtool: Path, groups: list[dict[str, Any]], path: Path) -> None:
    path.write_text(yaml.safe_dump({"groups": groups}))
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_rule_passes_promtool_check_rules(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    groups = prometheus_rule_groups(helm)
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert alerts == {
        "WTWorkflowRunsFailing",
        "WTBackendErrors",
        "WTWorkflowRunsQueuedLong",
        "WTOperatorDown",
        "WTWorkflowScheduleNotSucceeding",  # tests/unit/test_schedule_chart.py
    }
    promtool_check(promtool, groups, tmp_path / "rules.yaml")
    exported = operator_metric_names()
    for rule in (r for g in groups for r in g["rules"]):
        assert metric_names_in(rule["expr"]) <= exported, rule["expr"]
    # The everything-on values (alert labels, an extra recording rule) pass as well.
    docs = render(helm, values=EVERYTHING, api_versions=(MONITORING,))
    (everything,) = by_kind(docs, "PrometheusRule")
    assert everything["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = [r for g in everything["spec"]["groups"] for r in g["rules"]]
    assert all(r["labels"]["team"] == "data" for r in rules if "alert" in r)
    assert rules[-1]["record"] == "wt:workflowruns_finished:rate5m"
    promtool_check(promtool, everything["spec"]["groups"], tmp_path / "everything.yaml")


def series(metric: str, values: str, job: str = "wt-wt-operator-metrics", **labels: str) -> Any:
    """One promtool input series of the release rendered by prometheus_rule_groups()."""
    pairs = {"job": job, "namespace": "wt-system", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in pairs.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


RUNS, ERRORS = "wt_workflowruns_total", "wt_backend_errors_total"
ALERT_TESTS = {
    "rule_files": ["rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "name": "an operator in trouble",
            "interval": "1m",
            "input_series": [
                # Local: every run fails.
                series(RUNS, "0+1x60", invoker="Local", outcome="Failed"),
                series(RUNS, "0x60", invoker="Local", outcome="Succeeded"),
                # CloudBatch: a third fails, and many are cancelled (deleted on purpose).
                series(RUNS, "0+1x60", invoker="CloudBatch", outcome="Failed"),
                series(RUNS, "0+2x60", invoker="CloudBatch", outcome="Succeeded"),
                series(RUNS, "0+9x60", invoker="CloudBatch", outcome="Cancelled"),
                series(ERRORS, "0+60x60", backend="CloudBatch"),
                series(ERRORS, "0+1x60", backend="Local"),
                series("wt_workflowruns_queued", "3x60"),
                series("up", "1x9 0x50"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "40m",
                    "alertname": "WTWorkflowRunsFailing",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "invoker": "Local"}}],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTBackendErrors",
                    "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "backend": "CloudBatch"}}
                    ],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTWorkflowRunsQueuedLong",
                    "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTOperatorDown",
                    "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                },
                # Queued for 20 minutes only: not yet.
                {"eval_time": "20m", "alertname": "WTWorkflowRunsQueuedLong", "exp_alerts": []},
            ],
        },
        {
            "name": "a healthy operator, and another release's troubles",
            "interval": "1m",
            "input_series": [
                series(RUNS, "0+5x60", invoker="Local", outcome="Succeeded"),
                series(RUNS, "0+1x60", invoker="Local", outcome="Failed"),
                series("wt_workflowruns_queued", "0 2 0 4 0x56"),
                series("up", "1x60"),
                series(RUNS, "0+9x60", job="other", invoker="Local", outcome="Failed"),
                series(ERRORS, "0+60x60", job="other", backend="Local"),
            ],
            "alert_rule_test": [
                {"eval_time": "40m", "alertname": name, "exp_alerts": []}
                for name in (
                    "WTWorkflowRunsFailing",
                    "WTBackendErrors",
                    "WTWorkflowRunsQueuedLong",
                    "WTOperatorDown",
                )
            ],
        },
    ],
}


def test_alerts_fire_when_they_should_and_only_then(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    groups = prometheus_rule_groups(helm)
    for rule in (r for g in groups for r in g["rules"]):
        # promtool's unit tests compare annotations verbatim; their templates were already
        # checked by `promtool check rules`. Here only when an alert fires matters.
        rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(ALERT_TESTS))
    proc = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$job": ".+"}


def test_dashboard_configmap_shows_phases_outcomes_durations_queue_and_errors(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    assert not by_kind(render(helm), "ConfigMap")
    docs = render(
        helm,
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.namespace=grafana",
        "metrics.dashboard.annotations.grafana_folder=Workflows",
    )
    (cm,) = by_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's convention
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Workflows"}
    (raw,) = cm["data"].values()
    dashboard = json.loads(raw)
    panels = dashboard["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    titles = " ".join(p["title"] for p in panels)
    for shown in ("phase", "outcome", "duration", "Queued", "errors"):
        assert shown.lower() in titles.lower(), shown
    assert len({p["id"] for p in panels}) == len(panels)
    # Every query parses with Prometheus' own parser (as recording rules, Grafana's
    # variables replaced by what Grafana would put there) and names only real series.
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:panel_query_{i}", "expr": expr})
    promtool_check(promtool, [{"name": "dashboard", "rules": rules}], tmp_path / "dash.yaml")
    used = set().union(*(metric_names_in(e) for e in exprs))
    assert used == operator_metric_names()  # every series shown, and nothing invented

    relabelled = render(
        helm,
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.labels.grafana_dashboard=null",
        "metrics.dashboard.labels.dashboards=wt",
    )
    labels = by_kind(relabelled, "ConfigMap")[0]["metadata"]["labels"]
    assert labels["dashboards"] == "wt" and "grafana_dashboard" not in labels

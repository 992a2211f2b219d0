"""The chart's share of WorkflowSchedules: RBAC, aggregated roles and the alert."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.chart import (
    NON_DEFAULT,
    by_kind,
    operator_roles,
    prometheus_rule_groups,
    render,
    verbs_on,
)

ALERT = "WTWorkflowScheduleNotSucceeding"


def test_the_operator_may_run_schedules_and_nothing_more(helm: Path) -> None:
    for sets in ([], NON_DEFAULT):
        for role in operator_roles(render(helm, *sets)):
            assert "create" in verbs_on(role, "wt.dev", "workflowruns")
            assert verbs_on(role, "wt.dev", "workflowschedules") == {
                "get",
                "list",
                "watch",
                "patch",
            }
            assert verbs_on(role, "wt.dev", "workflowschedules/status") == {"get", "patch"}


def test_view_and_edit_cover_schedules(helm: Path) -> None:
    roles = {
        label.removeprefix("rbac.authorization.k8s.io/aggregate-to-"): role
        for role in by_kind(render(helm), "ClusterRole")
        for label, value in role["metadata"]["labels"].items()
        if label.startswith("rbac.authorization.k8s.io/aggregate-to-") and value == "true"
    }
    assert verbs_on(roles["view"], "wt.dev", "workflowschedules") == {"get", "list", "watch"}
    for name in ("edit", "admin"):
        assert {"create", "patch", "delete"} <= verbs_on(roles[name], "wt.dev", "workflowschedules")
        assert not verbs_on(roles[name], "wt.dev", "workflowschedules/status") - {
            "get",
            "list",
            "watch",
        }


def series(metric: str, values: str, job: str = "wt-wt-operator-metrics", **labels: str) -> Any:
    pairs = {"job": job, "namespace": "wt-system", "schedule_namespace": "reports", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in pairs.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


LAST, INTERVAL = (
    "wt_workflowschedule_last_success_timestamp_seconds",
    "wt_workflowschedule_interval_seconds",
)
TESTS = {
    "rule_files": ["rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                # hourly-stuck: last success at t=0, hourly: two intervals pass at 2h.
                series(LAST, "0x200", schedule="hourly-stuck"),
                series(INTERVAL, "3600x200", schedule="hourly-stuck"),
                # hourly-ok: succeeds every hour (the timestamp moves with time).
                series(LAST, "0x59 3600x60 7200x60 10800x20", schedule="hourly-ok"),
                series(INTERVAL, "3600x200", schedule="hourly-ok"),
                # Another release's schedule: not this rule's business.
                series(LAST, "0x200", job="other", schedule="elsewhere"),
                series(INTERVAL, "3600x200", job="other", schedule="elsewhere"),
            ],
            "alert_rule_test": [
                {"eval_time": "100m", "alertname": ALERT, "exp_alerts": []},
                {
                    "eval_time": "130m",
                    "alertname": ALERT,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "schedule": "hourly-stuck",
                                "schedule_namespace": "reports",
                            }
                        }
                    ],
                },
            ],
        }
    ],
}


def test_alert_fires_after_two_intervals_without_success(
    helm: Path,
    promtool: Path,
    tmp_path: Path,
) -> None:
    groups = prometheus_rule_groups(helm)
    rules = [r for g in groups for r in g["rules"]]
    assert ALERT in {r.get("alert") for r in rules}
    for rule in rules:
        rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(TESTS))
    proc = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_operators_creates_are_bound_to_schedule_owned_runs(helm: Path) -> None:
    docs = render(helm)
    [policy] = [
        d
        for d in by_kind(docs, "ValidatingAdmissionPolicy")
        if d["metadata"]["name"] == "wt-wt-operator-operator-runs"
    ]
    [condition] = policy["spec"]["matchConditions"]
    [sa] = by_kind(docs, "ServiceAccount")
    # Only the operator's own requests: users keep creating runs of their own.
    assert (
        f'"system:serviceaccount:{sa["metadata"]["namespace"]}:{sa["metadata"]["name"]}"'
        in (condition["expression"])
    )
    [check] = policy["spec"]["validations"]
    assert (
        "o.kind == 'WorkflowSchedule'" in check["expression"]
        and "controller" in check["expression"]
    )
    assert not [
        d
        for d in by_kind(render(helm, "rbac.create=false"), "ValidatingAdmissionPolicy")
        if d["metadata"]["name"].endswith("operator-runs")
    ]

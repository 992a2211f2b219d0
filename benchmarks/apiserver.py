"""Write requests as kube-apiserver counts them, split into persisted and refused.

Exists because the operator's own view (what it meant to write) hides what costs:
a request the API server refuses (422 from a JSON patch whose resourceVersion test
lost a race, 409 from a conflict) still costs a round trip, a decode and an
admission pass, and is then retried. ``apiserver_request_total`` counts every
request by verb, resource, subresource and HTTP code; the difference of two reads
around a benchmark is what that benchmark made the control plane do. The counter has
no namespace or client label, so one benchmark runs at a time, and the load
generator's own creates are told apart by verb (the operator never creates runs).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"})


@dataclasses.dataclass(frozen=True, order=True)
class RequestKey:
    resource: str
    subresource: str
    verb: str
    code: str

    @property
    def persisted(self) -> bool:
        return self.code.startswith("2")

    def __str__(self) -> str:
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb} {self.resource}{sub} {self.code}"


def write_requests(metrics_text: str) -> Counter[RequestKey]:
    """apiserver_request_total of the write verbs, by resource/subresource/verb/code."""
    out: Counter[RequestKey] = Counter()
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if not sample.name.endswith("_total") or labels.get("verb") not in WRITE_VERBS:
                continue
            key = RequestKey(
                labels.get("resource", ""),
                labels.get("subresource", ""),
                labels["verb"],
                labels.get("code", ""),
            )
            out[key] += int(sample.value)
    return out


def delta(before: Mapping[RequestKey, int], after: Mapping[RequestKey, int]) -> Counter[RequestKey]:
    out: Counter[RequestKey] = Counter()
    for key in set(before) | set(after):
        if n := after.get(key, 0) - before.get(key, 0):
            out[key] = n
    return out


def per_run_writes(requests: Mapping[RequestKey, int], runs: int) -> dict[str, Any]:
    """A run's writes: to WorkflowRuns (requests vs persisted), Events, log ConfigMaps.

    WorkflowRun creates (``POST``) are the load generator's and not counted.
    """
    wfr = {k: n for k, n in requests.items() if k.resource == "workflowruns" and k.verb != "POST"}
    # Any refused write counts, whatever it was for (a 409 on a log ConfigMap as much as
    # a 422 on a finalizer patch).
    refused = {str(k): n / runs for k, n in sorted(requests.items()) if not k.persisted}
    events = sum(n for k, n in requests.items() if k.resource == "events" and k.persisted)
    configmaps = sum(n for k, n in requests.items() if k.resource == "configmaps" and k.persisted)
    return {
        "runs": runs,
        "workflowrun_requests": sum(wfr.values()) / runs,
        "workflowrun_persisted": sum(n for k, n in wfr.items() if k.persisted) / runs,
        "workflowrun_refused": sum(n for k, n in wfr.items() if not k.persisted) / runs,
        "refused_by_kind": refused,
        "events_created": events / runs,
        "log_configmap_writes": configmaps / runs,
        "breakdown": {str(k): n / runs for k, n in sorted(requests.items())},
    }

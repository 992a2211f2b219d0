"""Prometheus metrics of the operator, on their own registry.

A private registry (not the global default) so tests can start several
operators in one process and so only our series are exported.
"""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]


@dataclasses.dataclass
class Metrics:
    """The operator's series; label ``invoker`` is Local, CloudBatch or CloudRunJob."""

    registry: CollectorRegistry = dataclasses.field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.runs = Counter(
            "wt_workflowruns_total",
            "WorkflowRuns that reached a terminal phase.",
            ["invoker", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "wt_workflowrun_duration_seconds",
            "Seconds from start (Running/Submitted) to a terminal phase.",
            ["invoker", "outcome"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
        )
        self.active = Gauge(
            "wt_workflowruns_active",
            "Runs executing (Local) or submitted and tracked (CloudBatch, CloudRunJob).",
            ["invoker"],
            registry=self.registry,
        )
        self.queued = Gauge(
            "wt_workflowruns_queued", "Local runs waiting for a free slot.", registry=self.registry
        )
        self.api_errors = Counter(
            "wt_backend_errors_total",
            "Transient backend errors that were retried.",
            ["backend"],
            registry=self.registry,
        )

        # Schedules: labelled by namespace and schedule (a bounded set the admin creates).
        self.schedule_runs = Counter(
            "wt_workflowschedule_runs_started_total",
            "Runs a WorkflowSchedule started for its slots.",
            ["schedule_namespace", "schedule"],
            registry=self.registry,
        )
        self.schedule_missed = Counter(
            "wt_workflowschedule_missed_slots_total",
            "Slots of a WorkflowSchedule that passed without a run (deadline, outage, Forbid).",
            ["schedule_namespace", "schedule"],
            registry=self.registry,
        )
        self.schedule_last_success = Gauge(
            "wt_workflowschedule_last_success_timestamp_seconds",
            "When the schedule's newest succeeded run completed (its creation until one has); "
            "time() minus this is the seconds since the last success. Absent while suspended.",
            ["schedule_namespace", "schedule"],
            registry=self.registry,
        )
        self.schedule_interval = Gauge(
            "wt_workflowschedule_interval_seconds",
            "Seconds between the schedule's last slot and its next one.",
            ["schedule_namespace", "schedule"],
            registry=self.registry,
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` from a background thread (prometheus_client's own server)."""
        start_http_server(port, addr=addr, registry=self.registry)

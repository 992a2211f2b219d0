"""`core/invocation.py`: a run request becomes the invoker's arguments and trace context."""

from __future__ import annotations

import yaml

from tests.unit.samples import LOCAL
from wt_operator.core.invocation import invocation, trace_id, traceparent
from wt_operator.core.spec import parse_spec


def test_local_spec_becomes_the_invokers_run_arguments() -> None:
    req = parse_spec(
        {
            **LOCAL,
            "executionMode": "async",
            "mockIo": True,
            "otel": {"exporter": "console", "consoleExporterDst": "stdout"},
            "lithopsConfig": {"backend": "localhost"},
            "env": [{"name": "A", "value": "1"}],
        },
        uid="u-1",
    )
    assert req.workflow_run_id == "u-1"  # defaults to metadata.uid
    inv = invocation(req, uid="u-1", config_text=req.config_text or "", env={"A": "1"})
    assert (inv.workflow_run_id, inv.run_uid, inv.results_url) == ("u-1", "u-1", "file:///tmp/r")
    assert (inv.execution_mode, inv.mock_io) == ("async", True)
    assert (inv.otel_exporter, inv.otel_console_exporter_dst) == ("console", "stdout")
    assert inv.extra_env["A"] == "1" and inv.extra_env["TRACEPARENT"] == traceparent("u-1")
    assert inv.lithops_config_text == "backend: localhost\n"
    assert yaml.safe_load(inv.config_text) == {"region": "north", "days": 3}


def test_the_trace_id_is_the_uid() -> None:
    uid = "0b5f3c4e-9f7a-4c1d-8a53-6f1e2d3c4b5a"
    assert trace_id(uid) == "0b5f3c4e9f7a4c1d8a536f1e2d3c4b5a"
    version, trace, span, flags = traceparent(uid).split("-")
    assert (version, trace, flags, len(span)) == ("00", trace_id(uid), "01", 16)
    assert len(trace_id("not-a-uuid")) == 32

"""What the workflow is told: a :class:`RunRequest` plus resolved values → an Invocation.

Exists so both invokers tell a workflow the same things the same way: its run
id, config, results URL, the author's environment, and the run's trace context
— a W3C ``TRACEPARENT`` whose trace id is the run's uid, so the workflow's spans
(exported to ``spec.otel``'s endpoint) form one trace per run that anyone can
find from ``status.traceId``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from wt_invokers.invocation import Invocation
from wt_operator.api import OTLP_ENDPOINT_ENV_VAR, TRACEPARENT_ENV_VAR
from wt_operator.core.spec import RunRequest

__all__ = ["invocation", "trace_id", "traceparent"]


def trace_id(uid: str) -> str:
    """The run's W3C trace id: its uid (128 bits) as 32 lowercase hex digits."""
    digits = uid.replace("-", "").lower()
    if len(digits) == 32 and all(c in "0123456789abcdef" for c in digits) and set(digits) != {"0"}:
        return digits
    return hashlib.sha256(uid.encode()).hexdigest()[:32]  # a uid that is not a UUID


def traceparent(uid: str) -> str:
    """``00-<trace id>-<parent span id>-01``: the run as the (sampled) parent of the workflow."""
    span = hashlib.sha256(f"span:{uid}".encode()).hexdigest()[:16]
    return f"00-{trace_id(uid)}-{span}-01"


def invocation(
    req: RunRequest, *, uid: str, config_text: str, env: Mapping[str, str]
) -> Invocation:
    """The library's Invocation for this run (``env``: the author's resolved variables)."""
    extra = dict(env)
    extra[TRACEPARENT_ENV_VAR] = traceparent(uid)
    extra.update(req.window_env)
    if req.otel_endpoint:
        extra[OTLP_ENDPOINT_ENV_VAR] = req.otel_endpoint
    return Invocation(
        workflow_run_id=req.workflow_run_id,
        config_text=config_text,
        results_url=req.results_url,
        execution_mode=req.execution_mode,
        mock_io=req.mock_io,
        otel_exporter=req.otel_exporter,
        otel_console_exporter_dst=req.otel_console_exporter_dst,
        extra_env=extra,
        lithops_config_text=req.lithops_config_text,
        run_uid=uid,
    )

"""Serving the operator: logging, metrics, the kopf registry, and kopf's event loop.

Separate from the command line (:mod:`wt_operator.__main__`) because importing kopf must
wait until the process has decided whether the client library may be loaded.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import kopf

from wt_operator.api import PEERING_NAME
from wt_operator.app import App, Scope
from wt_operator.config import OperatorConfig
from wt_operator.handlers import register
from wt_operator.metrics import Metrics
from wt_operator.shell.peering import oldest_first_priority

__all__ = ["serve"]

_LOG_FORMATS = {
    "full": kopf.LogFormat.FULL,
    "plain": kopf.LogFormat.PLAIN,
    "json": kopf.LogFormat.JSON,
}


def _configure_logging(log_format: str, *, verbose: bool, debug: bool) -> None:
    kopf.configure(
        debug=debug,
        verbose=verbose or debug,
        log_format=_LOG_FORMATS[log_format],
        # "[namespace/name]" in front of every text line about a run; JSON has a field.
        log_prefix=log_format != "json",
    )
    # Never log what could hold a secret: kubernetes_asyncio logs whole response bodies
    # (Secret reads included) at DEBUG, and the library's unmasked copy of workflow output
    # is redundant with the masked lines the runtime forwards.
    logging.getLogger("kubernetes_asyncio").setLevel(logging.WARNING)
    # google-api-core's gRPC logging interceptor serialises every request and response
    # to JSON when DEBUG is on (CreateJob carries the run's env), and that serialising was
    # the operator's largest CPU cost under --verbose.
    logging.getLogger("google").setLevel(logging.INFO)
    logging.getLogger("wt_invokers.local.output").setLevel(logging.CRITICAL)
    logging.getLogger("wt_operator.output").setLevel(logging.INFO)


def serve(
    config: OperatorConfig,
    *,
    namespaces: list[str] | None,
    standalone: bool,
    priority: int | None,
    log_format: str,
    verbose: bool,
    debug: bool,
) -> None:
    """Run the operator until it is stopped (SIGTERM/SIGINT). ``namespaces`` None: all."""
    _configure_logging(log_format, verbose=verbose, debug=debug)
    metrics = Metrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    registry = kopf.OperatorRegistry()
    register(registry, App(config, metrics, Scope(namespaces, standalone=standalone)))
    if sys.version_info < (3, 12) and hasattr(asyncio, "PidfdChildWatcher"):
        # Python 3.11's default watches each child from a thread of its own (a thread
        # started per workflow); a pidfd in the event loop costs less. 3.12+ does this itself.
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    kopf.run(
        registry=registry,
        clusterwide=namespaces is None,
        namespaces=namespaces or (),
        standalone=standalone,
        priority=priority if priority is not None else oldest_first_priority(time.time()),
        # Naming a peering makes kopf require it (and pause until it exists): only
        # when coordinating with other replicas.
        peering_name=None if standalone else PEERING_NAME,
        liveness_endpoint=(
            f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
        ),
    )

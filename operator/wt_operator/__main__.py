"""``wt-operator`` / ``python -m wt_operator``: run the WorkflowRun operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

import kopf

from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.handlers import Scope, register
from wt_operator.metrics import Metrics
from wt_operator.shell.peering import PEERING_NAME, oldest_first_priority

__all__ = ["main"]

_LOG_FORMATS = {
    "full": kopf.LogFormat.FULL,
    "plain": kopf.LogFormat.PLAIN,
    "json": kopf.LogFormat.JSON,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wt-operator",
        description="Reconcile WorkflowRun resources (wt.dev/v1alpha1). Settings come from "
        "environment variables; see the README.",
    )
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="watch this namespace (repeatable; globs allowed)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (needs a ClusterRole)",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="do not coordinate with other replicas (no kopf peering object needed)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the live replica with the highest one acts "
        "(default: derived from the start time, so the oldest live replica keeps acting)",
    )
    p.add_argument(
        "--log-format",
        choices=sorted(_LOG_FORMATS),
        default="full",
        help="full: time, logger, level; plain: the message only; json: one JSON object per "
        "line, records about a run carry it as an 'object' field (namespace, name, uid)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log kopf's own decisions")
    p.add_argument("--debug", action="store_true", help="log everything, including API calls")
    return p


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = OperatorConfig.from_env()
    except ConfigError as exc:
        print(f"wt-operator: {exc}", file=sys.stderr)
        return 2
    _configure_logging(args.log_format, verbose=args.verbose, debug=args.debug)
    metrics = Metrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    registry = kopf.OperatorRegistry()
    scope = Scope(
        None if args.all_namespaces else list(args.namespace or ()), standalone=args.standalone
    )
    register(registry, config, metrics, scope)
    priority = args.priority if args.priority is not None else oldest_first_priority(time.time())
    if sys.version_info < (3, 12) and hasattr(asyncio, "PidfdChildWatcher"):
        # Python 3.11's default watches each child from a thread of its own (a thread
        # started per workflow); a pidfd in the event loop costs less. 3.12+ does this itself.
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    kopf.run(
        registry=registry,
        clusterwide=bool(args.all_namespaces),
        namespaces=args.namespace or (),
        standalone=args.standalone,
        priority=priority,
        # Naming a peering makes kopf require it (and pause until it exists): only
        # when coordinating with other replicas.
        peering_name=None if args.standalone else PEERING_NAME,
        liveness_endpoint=(
            f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
        ),
        memo=kopf.Memo(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

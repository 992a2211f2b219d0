"""``wt-operator`` / ``python -m wt_operator``: run the WorkflowRun operator."""

from __future__ import annotations

import argparse
import logging
import random
import sys

import kopf

from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.handlers import register
from wt_operator.metrics import Metrics

__all__ = ["main"]


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
        help="do not coordinate with other replicas (no kopf peering)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the live replica with the highest one acts "
        "(default: random, so replicas never tie)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log kopf's own decisions")
    p.add_argument("--debug", action="store_true", help="log everything, including API calls")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = OperatorConfig.from_env()
    except ConfigError as exc:
        print(f"wt-operator: {exc}", file=sys.stderr)
        return 2
    kopf.configure(
        debug=args.debug,
        verbose=args.verbose or args.debug,
        log_format=kopf.LogFormat.FULL,
        log_prefix=True,  # "[namespace/name]" on every line about a run
    )
    logging.getLogger("wt_operator.output").setLevel(logging.INFO)
    # Never log what could hold a secret: kubernetes_asyncio logs whole response bodies
    # (Secret reads included) at DEBUG, and the library's unmasked copy of workflow output
    # is redundant with the masked lines the runtime forwards.
    logging.getLogger("kubernetes_asyncio").setLevel(logging.WARNING)
    # google-api-core's gRPC logging interceptor serialises every request and response
    # to JSON when DEBUG is on (CreateJob carries the run's env, Secrets included), and
    # that serialising was the operator's largest CPU cost under --verbose.
    logging.getLogger("google").setLevel(logging.INFO)
    logging.getLogger("wt_invokers.local.output").setLevel(logging.CRITICAL)
    metrics = Metrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    registry = kopf.OperatorRegistry()
    register(
        registry,
        config,
        metrics,
        namespaces=0 if args.all_namespaces else len(args.namespace or ()),
    )
    priority = args.priority if args.priority is not None else random.randint(1, 2**30)
    kopf.run(
        registry=registry,
        clusterwide=bool(args.all_namespaces),
        namespaces=args.namespace or (),
        standalone=args.standalone,
        priority=priority,
        # Naming a peering makes kopf require it (and pause until it exists): only
        # when coordinating with other replicas.
        peering_name=None if args.standalone else "wt-operator",
        liveness_endpoint=(
            f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
        ),
        memo=kopf.Memo(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

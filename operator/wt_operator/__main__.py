"""``wt-operator`` / ``python -m wt_operator``: run the WorkflowRun operator.

Only the command line is read here; kopf is imported afterwards (:mod:`wt_operator.serve`),
once :func:`~wt_operator.shell.credentials.keep_client_library_out` has decided whether
the client library may be loaded at all.
"""

from __future__ import annotations

import argparse
import sys

from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.shell.credentials import keep_client_library_out

__all__ = ["main"]

LOG_FORMATS = ("full", "json", "plain")


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
        choices=LOG_FORMATS,
        default="full",
        help="full: time, logger, level; plain: the message only; json: one JSON object per "
        "line, records about a run carry it as an 'object' field (namespace, name, uid)",
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
    keep_client_library_out()
    from wt_operator.serve import serve  # imports kopf: after the decision above

    serve(
        config,
        namespaces=None if args.all_namespaces else list(args.namespace or ()),
        standalone=args.standalone,
        priority=args.priority,
        log_format=args.log_format,
        verbose=args.verbose,
        debug=args.debug,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

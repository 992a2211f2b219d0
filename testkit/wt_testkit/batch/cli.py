"""``python -m wt_testkit.batch``: the Batch stand-in as a process of its own.

Exists for tests (and demos) that need Batch in another process than the one
asserting on it — the operator under test runs as a child process, for instance.
Prints the gRPC address (``127.0.0.1:PORT``) on the first stdout line and the HTTP
control URL (``http://127.0.0.1:PORT``, see :mod:`wt_testkit.batch.control`) on
the second, flushes, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from wt_testkit.batch.lifecycle import parse_lifecycle
from wt_testkit.batch.server import InProcessBatchServer

__all__ = ["main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wt_testkit.batch",
        description="Serve an in-process Google Cloud Batch stand-in (gRPC) plus a JSON "
        "control endpoint. Prints the gRPC address, then the control URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="gRPC port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    parser.add_argument(
        "--lifecycle", default="", help='e.g. "SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED"'
    )
    parser.add_argument(
        "--deny-create",
        metavar="CODE",
        default=None,
        help="refuse every CreateJob with this gRPC status (e.g. PERMISSION_DENIED)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m wt_testkit.batch``."""
    args = _parse_args(argv)
    server = InProcessBatchServer(
        host=args.host,
        port=args.port,
        latency=args.latency,
        lifecycle=parse_lifecycle(args.lifecycle),
    )
    if args.deny_create:
        server.deny(args.deny_create, method="CreateJob")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with server:
        control = server.start_control(args.control_port)
        sys.stdout.write(f"{server.address}\n{control}\n")
        sys.stdout.flush()
        while not done.wait(1.0):
            pass
    return 0

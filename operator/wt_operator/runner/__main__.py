"""``wt-runner``: the runner's command line (serve on a socket, or probe one).

Run as the chart's second container: ``wt-runner --socket=/run/wt-runner/runner.sock
--allow-uid=<operator uid>``; see :mod:`wt_operator.runner.server` for what it does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from wt_operator.runner import protocol
from wt_operator.runner.protocol import ProtocolError
from wt_operator.runner.server import Runner

__all__ = ["main", "probe"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wt-runner",
        description="Run Local workflows handed over a unix socket by the wt operator.",
    )
    p.add_argument("--socket", required=True, type=Path, help="the unix socket to listen on")
    p.add_argument(
        "--allow-uid",
        action="append",
        type=int,
        default=[],
        metavar="UID",
        help="a uid that may connect (the operator's; repeatable)",
    )
    p.add_argument(
        "--allow-same-uid",
        action="store_true",
        help="accept --allow-uid equal to the runner's own uid (development only: "
        "the workflows run as that uid and could then drive the runner)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="exit 0 if a runner answers on --socket within 5 s (liveness/readiness probe)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where started runs are recorded, so a restarted runner kills what an earlier "
        "one left (default: wt-runner-state beside the socket)",
    )
    return p


def probe(socket_path: Path, timeout: float = 5.0) -> bool:
    """Whether a runner answers on ``socket_path``: any well-formed reply counts (a probe
    runs as the runner's own uid, so the answer is a refusal, which proves it serves)."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(socket_path))
            sock.sendall(protocol.encode("probe"))
            protocol.decode(sock.makefile("rb").readline())
    except (OSError, ProtocolError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.probe:
        return 0 if probe(args.socket) else 1
    if not args.allow_uid:
        print("wt-runner: --allow-uid is required (the operator's uid)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if os.getuid() in args.allow_uid and not args.allow_same_uid:
        print(
            f"wt-runner: --allow-uid {os.getuid()} is this runner's own uid, which its workflows "
            "share; run the runner as another uid (or pass --allow-same-uid in development)",
            file=sys.stderr,
        )
        return 2
    state_dir = args.state_dir or args.socket.parent / "wt-runner-state"
    runner = Runner(args.socket, allowed_uids=args.allow_uid, state_dir=state_dir)

    async def serve() -> None:
        await runner.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.close()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

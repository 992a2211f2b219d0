"""``kubectl-wt``: the command line, and the one place errors become a line on stderr.

kubectl runs ``kubectl-wt`` from PATH for ``kubectl wt …`` and passes every
argument after ``wt`` unchanged, so the global flags (``--kubeconfig``,
``--context``, ``-n``) are accepted before and after the subcommand.
Exit codes: 0 success, 1 an error (one line saying what to do), and for
``wait``/``--wait`` the workflow's own exit code, 124 on timeout, 130 when the
run was cancelled or the wait interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from wt_kubectl.core import EXIT_CANCELLED, parse_duration, rerun_manifest, run_name
from wt_kubectl.core import submit_manifest as build_submit
from wt_kubectl.describe import render_describe
from wt_kubectl.errors import PluginError, UsageError
from wt_kubectl.follow import Progress, follow
from wt_kubectl.kube import Cluster, connect
from wt_kubectl.logs import show_logs
from wt_kubectl.schedules import (
    cancel_run,
    describe_schedule,
    get_schedule,
    get_schedules,
    runs_of,
    schedule_target,
    set_suspend,
    trigger_manifest,
)

__all__ = ["DEBUG_ENV", "main"]

DEBUG_ENV = "WT_KUBECTL_DEBUG"
SCHEDULE_KINDS = {"schedules", "schedule", "wfs", "workflowschedules", "workflowschedule"}


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands the defaults are SUPPRESSed, so a flag given before the subcommand
    # is not overwritten by the subparser's default.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file to use")
    parser.add_argument("--context", default=default, help="kubeconfig context to use")
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's)"
    )


def _wait_flags(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    if optional:
        parser.add_argument(
            "--wait", action="store_true", help="follow the run and exit with its exit code"
        )
    parser.add_argument(
        "--timeout", type=str, default=None, help="give up waiting after D (30s, 5m, 1h): exit 124"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl wt",
        description="Submit, follow, re-run, cancel and inspect WorkflowRuns, and trigger, "
        "suspend, resume and inspect WorkflowSchedules (wt.dev/v1alpha1).",
        epilog="RBAC each command needs: docs/kubectl-plugin.md",
    )
    _globals(top, top=True)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="create a run from a manifest; print its name")
    _globals(p, top=False)
    p.add_argument("-f", "--filename", required=True, help="WorkflowRun manifest (- for stdin)")
    p.add_argument("--name", help="name of the run (default: the manifest's, or generated)")
    _wait_flags(p, optional=True)

    p = sub.add_parser("wait", help="follow a run; exit with the workflow's exit code")
    _globals(p, top=False)
    p.add_argument("name", metavar="NAME")
    _wait_flags(p, optional=False)

    p = sub.add_parser("rerun", help="create a new run with the same spec; print its name")
    _globals(p, top=False)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--name", dest="new_name", help="name of the new run (default: generated)")
    p.add_argument(
        "--keep-workflow-run-id",
        action="store_true",
        help="tell the workflow the original spec.workflowRunId (default: the new run's uid)",
    )
    _wait_flags(p, optional=True)

    p = sub.add_parser("logs", help="print a run's output")
    _globals(p, top=False)
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")

    p = sub.add_parser(
        "describe",
        help="a run's phase, reason, timings and Events; or a schedule's (schedule NAME)",
    )
    _globals(p, top=False)
    p.add_argument("target", nargs="+", metavar="[schedule] NAME")

    p = sub.add_parser("cancel", help="stop a run in place: it ends Cancelled, its record kept")
    _globals(p, top=False)
    p.add_argument("name", metavar="NAME")

    p = sub.add_parser("trigger", help="start a run of a schedule now (marked manual)")
    _globals(p, top=False)
    p.add_argument("name", metavar="SCHEDULE")
    p.add_argument("--name", dest="new_name", help="name of the run (default: generated)")
    _wait_flags(p, optional=True)

    for verb, what in (("suspend", "start no more runs"), ("resume", "start runs again")):
        p = sub.add_parser(verb, help=f"make a schedule {what}")
        _globals(p, top=False)
        p.add_argument("name", metavar="SCHEDULE")

    p = sub.add_parser("get", help="schedules with their last runs' phases")
    _globals(p, top=False)
    p.add_argument("kind", choices=sorted(SCHEDULE_KINDS), metavar="schedules")
    p.add_argument("name", nargs="?", metavar="NAME")
    return top


def _read_manifest(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise UsageError(f"{source} is not valid YAML{line}: fix it and submit again") from None


async def _wait(cluster: Cluster, name: str, timeout: float | None) -> int:
    progress = Progress(name, sys.stderr, tty=sys.stderr.isatty())
    return await follow(cluster, name, timeout=timeout, progress=progress, err=sys.stderr)


async def _created(
    cluster: Cluster, body: dict[str, Any], namespace: str, args: Any, timeout: float | None
) -> int:
    created = await cluster.create_run(body, namespace)
    name = created["metadata"]["name"]
    print(name, flush=True)
    if not args.wait:
        return 0
    cluster.namespace = namespace
    return await _wait(cluster, name, timeout)


async def _run(args: argparse.Namespace) -> int:
    # Parsed first: a bad duration is refused before anything is created.
    raw_timeout = getattr(args, "timeout", None)
    timeout = parse_duration(raw_timeout) if raw_timeout is not None else None
    if args.command == "submit":
        docs = _read_manifest(args.filename)  # before connecting: a typo needs no cluster
    cluster = await connect(
        kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace
    )
    try:
        if args.command == "submit":
            body, namespace = build_submit(
                docs,
                source=args.filename,
                name=args.name,
                namespace_flag=args.namespace,
                default_namespace=cluster.namespace,
            )
            return await _created(cluster, body, namespace, args, timeout)
        now = dt.datetime.now(dt.UTC)
        if args.command == "get":
            sys.stdout.write(await get_schedules(cluster, args.name, now))
            return 0
        if args.command == "describe":
            target = schedule_target(args.target)
            if target is not None:
                obj = await get_schedule(cluster, target[1])
                runs = await runs_of(cluster, target[1])
                events = await cluster.list_events(obj["metadata"]["uid"])
                sys.stdout.write(describe_schedule(obj, runs, events, now))
                return 0
            args.name = args.target[0]
        if args.command in ("suspend", "resume"):
            print(await set_suspend(cluster, args.name, suspend=args.command == "suspend"))
            return 0
        if args.command == "trigger":
            schedule = await get_schedule(cluster, args.name)
            body = trigger_manifest(schedule, now=now, name=args.new_name)
            return await _created(cluster, body, cluster.namespace, args, timeout)
        name = run_name(args.name)
        if args.command == "cancel":
            print(await cancel_run(cluster, name))
            return 0
        if args.command == "wait":
            return await _wait(cluster, name, timeout)
        if args.command == "rerun":
            old = await cluster.get_run(name)
            body = rerun_manifest(
                old, name=args.new_name, keep_workflow_run_id=args.keep_workflow_run_id
            )
            return await _created(cluster, body, cluster.namespace, args, timeout)
        if args.command == "logs":
            return await show_logs(
                cluster, name, follow=args.follow, out=sys.stdout, err=sys.stderr
            )
        run = await cluster.get_run(name)
        events = await cluster.list_events(run["metadata"]["uid"])
        sys.stdout.write(render_describe(run, events, dt.datetime.now(dt.UTC)))
        return 0
    finally:
        await cluster.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except PluginError as exc:
        sys.stdout.flush()
        print(f"kubectl wt: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # `kubectl wt logs x | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        # A bug, not the user's doing: still one line, the traceback on request.
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"kubectl wt: unexpected {type(exc).__name__}: {exc} (a bug: please report it; "
            f"{DEBUG_ENV}=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

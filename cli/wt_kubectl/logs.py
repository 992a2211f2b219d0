"""``kubectl wt logs``: a run's output, wherever the invoker left it.

Local runs: the operator keeps the (masked, size-bounded) output in the
ConfigMap ``wt-log-<uid>`` (or, when someone else took that name first,
``wt-log-<uid>-<random>``) and rewrites it every few seconds while the run is
active. Only the ConfigMap the run's ``status.log`` names, with the uid recorded
there, is shown: anyone who may create ConfigMaps in the namespace could create
``wt-log-<uid>`` first, owner reference and all, but only the operator writes
status; ``-f`` re-reads it and prints only what is new until the operator marks
it complete. CloudBatch runs: the output is in Cloud Logging; the query and the
console link always go to stderr, the lines to stdout when credentials allow.

Output goes to stdout untouched; every note about it (nothing stored, cut in
the middle, lines not fetched) goes to stderr, so ``> out.txt`` keeps only output.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, TextIO

from wt_kubectl.cloud_logging import (
    LinesUnavailable,
    batch_log_location,
    cloud_run_log_location,
    entry_text,
    fetch_entries,
)
from wt_kubectl.core import new_log_text
from wt_kubectl.kube import Cluster
from wt_operator.api import (
    ANNOTATION_LOG_BYTES,
    ANNOTATION_LOG_COMPLETE,
    ANNOTATION_LOG_TRUNCATED,
    LOG_KEY,
    TERMINAL_PHASES,
    log_configmap_name,
)

__all__ = ["ENDED_GRACE_SECONDS", "POLL_SECONDS", "show_logs"]

POLL_SECONDS = 2.0
"""Between two reads while following (the operator rewrites the log every few seconds)."""
ENDED_GRACE_SECONDS = 15.0
"""How long after a run ended ``-f`` waits for its log to be marked complete."""
_BATCH_POLL_SECONDS = 5.0
_BATCH_INGEST_SECONDS = 5.0
"""Cloud Logging shows entries a few seconds after they were written."""


def _phase(run: Mapping[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase") or "Pending")


def _no_output_note(run: Mapping[str, Any]) -> str:
    name = (run.get("metadata") or {}).get("name")
    if _phase(run) in TERMINAL_PHASES:
        return (
            f"kubectl wt: no output stored for {name}: the workflow printed nothing, or its "
            "operator did not store it (older than stored logs, or not allowed to write "
            f"ConfigMaps); the last lines are in its status message: kubectl wt describe {name}\n"
        )
    return f"kubectl wt: no output yet ({name} is {_phase(run)}); -f follows it\n"


def _truncation_note(cm: Mapping[str, Any]) -> str:
    annotations = (cm.get("metadata") or {}).get("annotations") or {}
    if annotations.get(ANNOTATION_LOG_TRUNCATED) != "true":
        return ""
    written = annotations.get(ANNOTATION_LOG_BYTES)
    total = f" of {written} bytes written" if written else ""
    return (
        f"kubectl wt: the middle of this output was cut{total} to keep the stored log "
        "within its size limit\n"
    )


def _complete(cm: Mapping[str, Any]) -> bool:
    annotations = (cm.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_LOG_COMPLETE) == "true"


def _text(cm: Mapping[str, Any]) -> str:
    return str((cm.get("data") or {}).get(LOG_KEY) or "")


def _recorded(run: Mapping[str, Any]) -> tuple[str, str] | None:
    """The log ConfigMap's name and uid as the operator recorded them in status.log."""
    log = (run.get("status") or {}).get("log") or {}
    name, uid = log.get("configMap"), log.get("uid")
    return (str(name), str(uid)) if name and uid else None


def _owned(cm: Mapping[str, Any], run: Mapping[str, Any], uid: str) -> bool:
    meta = cm.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    run_uid = run["metadata"]["uid"]
    return meta.get("uid") == uid and any(o.get("uid") == run_uid for o in owners)


async def _stored_log(
    cluster: Cluster, run: Mapping[str, Any], err: TextIO, said: set[str]
) -> dict[str, Any] | None:
    """The run's log ConfigMap if it is the operator's; otherwise None, said once."""
    name = run["metadata"]["name"]
    recorded = _recorded(run)
    if recorded is None:
        default = log_configmap_name(run["metadata"]["uid"])
        if default not in said and await cluster.get_configmap(default) is not None:
            said.add(default)
            err.write(
                f"kubectl wt: ConfigMap {default} exists but the operator has not recorded "
                f"it as the log of {name} (status.log); it is not shown\n"
            )
        return None
    cm_name, uid = recorded
    cm = await cluster.get_configmap(cm_name)
    if cm is not None and not _owned(cm, run, uid):
        if cm_name not in said:
            said.add(cm_name)
            err.write(
                f"kubectl wt: ConfigMap {cm_name} is not the log the operator wrote for "
                f"{name} (another object has taken its name); it is not shown\n"
            )
        return None
    return cm


async def _local(
    cluster: Cluster, run: Mapping[str, Any], *, follow: bool, out: TextIO, err: TextIO
) -> int:
    name = run["metadata"]["name"]
    printed, ended_at = "", None
    said: set[str] = set()
    while True:
        cm = await _stored_log(cluster, run, err, said)
        if cm is not None:
            text, complete = _text(cm), _complete(cm)
            new, skipped = new_log_text(printed, text)
            if skipped:
                err.write("kubectl wt: [output skipped: more was written than the log keeps]\n")
            out.write(new)
            out.flush()
            printed = text
            if not follow or complete:
                # Said last, with the final byte count, where it is seen after the output.
                err.write(_truncation_note(cm))
                if not follow and not complete and _phase(run) not in TERMINAL_PHASES:
                    err.write(f"kubectl wt: {name} is {_phase(run)}: output so far (-f follows)\n")
                return 0
        elif not follow:
            err.write(_no_output_note(run))
            return 0
        found = await cluster.find_run(name)
        if found is None:
            err.write(f"kubectl wt: {name} was deleted; its log ends here\n")
            return 0
        run = found
        if _phase(run) in TERMINAL_PHASES:
            ended_at = ended_at or time.monotonic()
            if time.monotonic() - ended_at > ENDED_GRACE_SECONDS:
                # The operator never completed the log: too old to store logs, or gone.
                if cm is None:
                    err.write(_no_output_note(run))
                else:
                    err.write(f"kubectl wt: {name} ended; its log was never marked complete\n")
                return 0
        await asyncio.sleep(POLL_SECONDS)


async def _batch(
    cluster: Cluster, run: Mapping[str, Any], *, follow: bool, out: TextIO, err: TextIO
) -> int:
    name = run["metadata"]["name"]
    status = run.get("status") or {}
    if (run.get("spec") or {}).get("invoker") == "CloudRunJob":
        location = cloud_run_log_location(status.get("cloudRun") or {})
        what = "Cloud Run execution"
    else:
        location = batch_log_location(status.get("cloudBatch") or {})
        what = "Batch job"
    if location is None:
        err.write(f"kubectl wt: {name} has no {what} yet ({_phase(run)}): no logs to show\n")
        return 0
    project, query, url = location
    err.write(f"Cloud Logging query: {query}\nConsole: {url}\n")
    err.flush()
    seen: set[str] = set()
    after: str | None = None
    while True:
        ended = _phase(run) in TERMINAL_PHASES
        try:
            entries = await asyncio.to_thread(fetch_entries, project, query, after=after)
        except LinesUnavailable as exc:
            err.write(f"kubectl wt: log lines not shown: {exc}\n")
            return 0
        for entry in entries:
            # Reads restart at the last timestamp (>=): skip the entries already printed
            # there; older ones never come back.
            stamp, key = entry.get("timestamp") or after, str(entry.get("insertId") or "")
            if stamp == after and key in seen:
                continue
            if stamp != after:
                seen, after = set(), stamp
            seen.add(key)
            out.write(entry_text(entry) + "\n")
        out.flush()
        if not follow or ended:
            return 0
        await asyncio.sleep(_BATCH_POLL_SECONDS)
        found = await cluster.find_run(name)
        if found is None:
            return 0
        run = found
        if _phase(run) in TERMINAL_PHASES:
            # One last read once Cloud Logging has the job's final lines.
            await asyncio.sleep(_BATCH_INGEST_SECONDS)


async def show_logs(cluster: Cluster, name: str, *, follow: bool, out: TextIO, err: TextIO) -> int:
    """Print run ``name``'s output (``follow``: until it is complete); the exit code."""
    run = await cluster.get_run(name)
    if (run.get("spec") or {}).get("invoker") in ("CloudBatch", "CloudRunJob"):
        return await _batch(cluster, run, follow=follow, out=out, err=err)
    return await _local(cluster, run, follow=follow, out=out, err=err)

"""A CloudBatch or CloudRunJob run's log lines, from Cloud Logging's REST API, if allowed.

Batch sends a job's output to Cloud Logging, not to the cluster. The operator
records the query and the console link in ``status.cloudBatch``; this module
reads the lines themselves with ``entries:list`` and Application Default
Credentials (google-auth, from the ``gcp`` extra). It never fails a command:
without google-auth, credentials or permission, :class:`LinesUnavailable` says
why and the caller still prints the query and link.

``WT_KUBECTL_LOGGING_ENDPOINT`` replaces ``https://logging.googleapis.com``
(tests point it at a local stand-in of the API).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ENDPOINT_ENV",
    "LinesUnavailable",
    "batch_log_location",
    "entry_text",
    "fetch_entries",
]

ENDPOINT_ENV = "WT_KUBECTL_LOGGING_ENDPOINT"
_DEFAULT_ENDPOINT = "https://logging.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/logging.read"
_PAGE_SIZE = 1000
_MAX_PAGES = 20
"""At most 20,000 lines per read; the console link shows the rest."""


class LinesUnavailable(Exception):
    """The log lines cannot be read here; ``str()`` says why (shown, never fatal)."""


def batch_log_location(job: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(project, Cloud Logging filter, console link) of a run's Batch job, or None.

    Prefers what the operator recorded; for runs an older operator handled (no
    ``logsQuery``), derives the filter Batch logs are found by from the job's name
    and uid.
    """
    name, uid = str(job.get("jobName") or ""), str(job.get("jobUid") or "")
    query, url = str(job.get("logsQuery") or ""), str(job.get("logsUrl") or "")
    found = re.search(r"projects/([^/\s\"]+)", name or query)
    project = found.group(1) if found else ""
    if not project and url:
        project = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("project", [""])[0]
    if not query and project and uid:
        query = (
            f'logName=("projects/{project}/logs/batch_task_logs" OR '
            f'"projects/{project}/logs/batch_agent_logs") AND labels.job_uid="{uid}"'
        )
    if not query:
        return None
    if not url:
        url = (
            "https://console.cloud.google.com/logs/query;query="
            f"{urllib.parse.quote(query, safe='')}?project={project}"
        )
    return project, query, url


def cloud_run_log_location(execution: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(project, Cloud Logging filter, console link) of a run's Cloud Run execution, or None.

    Cloud Run Jobs write their containers' output to Cloud Logging under the job's
    resource, labelled with the execution's name.
    """
    parts = str(execution.get("executionName") or "").split("/")
    if len(parts) != 8:
        return None
    project, region, job, name = parts[1], parts[3], parts[5], parts[7]
    query = (
        f'resource.type="cloud_run_job" AND resource.labels.job_name="{job}" AND '
        f'resource.labels.location="{region}" AND '
        f'labels."run.googleapis.com/execution_name"="{name}"'
    )
    url = str(execution.get("consoleUrl") or "") or (
        "https://console.cloud.google.com/logs/query;query="
        f"{urllib.parse.quote(query, safe='')}?project={project}"
    )
    return project, query, url


def entry_text(entry: Mapping[str, Any]) -> str:
    """The printable line of a LogEntry: its text, or its JSON payload's message."""
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip("\n")
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        if "message" in payload:
            return str(payload["message"]).rstrip("\n")
        return json.dumps(payload, sort_keys=True)
    return json.dumps(entry.get("protoPayload") or {}, sort_keys=True)


def _session() -> Any:
    try:
        import google.auth
        import google.auth.exceptions
        from google.auth.transport.requests import AuthorizedSession
    except ImportError:
        raise LinesUnavailable(
            "google-auth is not installed (pip install 'wt-invokers[gcp]' to fetch them)"
        ) from None
    try:
        with warnings.catch_warnings():
            # End-user ADC without a quota project warns on every call; not our business.
            warnings.simplefilter("ignore")
            credentials, _ = google.auth.default(scopes=[_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise LinesUnavailable(
            "no Google credentials found: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]


def fetch_entries(project: str, query: str, *, after: str | None = None) -> list[dict[str, Any]]:
    """LogEntries matching ``query`` in ``project``, oldest first (blocking; run in a thread).

    ``after``: only entries at or after this RFC 3339 timestamp (for following).
    """
    if not project:
        raise LinesUnavailable("the run's Batch job names no Google Cloud project")
    session = _session()
    # Importable now: _session() needed both (AuthorizedSession is built on requests).
    import google.auth.exceptions
    import requests

    endpoint = os.environ.get(ENDPOINT_ENV) or _DEFAULT_ENDPOINT
    flt = f'({query}) AND timestamp>="{after}"' if after else query
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": flt,
        "orderBy": "timestamp asc",
        "pageSize": _PAGE_SIZE,
    }
    entries: list[dict[str, Any]] = []
    try:
        for _ in range(_MAX_PAGES):
            rsp = session.post(f"{endpoint.rstrip('/')}/v2/entries:list", json=body, timeout=30)
            if rsp.status_code in (401, 403):
                raise LinesUnavailable(
                    f"Cloud Logging refused to read project {project}'s logs "
                    f"(HTTP {rsp.status_code}): you need roles/logging.viewer there"
                )
            if rsp.status_code != 200:
                raise LinesUnavailable(
                    f"Cloud Logging answered HTTP {rsp.status_code}: {rsp.text[:200]}"
                )
            page = rsp.json()
            entries += page.get("entries") or []
            token = page.get("nextPageToken")
            if not token:
                break
            body["pageToken"] = token
    except google.auth.exceptions.GoogleAuthError as exc:
        raise LinesUnavailable(f"Google credentials could not be used: {exc}") from None
    except requests.RequestException as exc:
        raise LinesUnavailable(f"cannot reach Cloud Logging at {endpoint}: {exc}") from None
    finally:
        session.close()
    return entries

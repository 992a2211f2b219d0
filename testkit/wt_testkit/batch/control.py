"""A JSON-over-HTTP control endpoint for a Batch stand-in running in another process.

Exists for tests that run the stand-in as a separate process (``python -m
wt_testkit.batch``): they cannot call its methods, so the same control and
observation surface is offered over plain HTTP on loopback. Routes:

* ``GET /jobs`` → ``{"jobs": {name: {"state": ..., "job": {...}}}}`` (``job`` is
  the Job message as a dict with proto field names)
* ``GET /jobs/<id or name>`` → ``{"state": ..., "job": {...}}`` or 404
* ``GET /stats`` → ``{"calls": {method: n}, "create_calls": n, "created_jobs": n,
  "create_counts": {name: n}}``
* ``POST /jobs/<id or name>/state`` with ``{"state": "SUCCEEDED", "description": "..."}``
* ``POST /faults`` with any of ``{"reset": true, "latency": 0.05,
  "fail_next": {"method": "CreateJob", "code": "UNAVAILABLE", "times": 3},
  "lose_reply_after_commit": {"method": "CreateJob", "times": 1, "code": "UNAVAILABLE"},
  "deny": {"method": "CreateJob", "code": "PERMISSION_DENIED"},
  "allow": {"method": "CreateJob"}}``
* ``POST /lifecycle`` with ``{"lifecycle": [["RUNNING", 0.2], ["SUCCEEDED", null]]}``
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from google.cloud import batch_v1
from google.protobuf import json_format

from wt_testkit.batch.lifecycle import Lifecycle, resolve_steps

__all__ = ["ControlEndpoint", "Controlled"]


class Controlled(Protocol):
    """What the endpoint drives: a stand-in's jobs, its injected faults and its latency.

    :class:`~wt_testkit.batch.server.InProcessBatchServer` is one (its ``JobStore``,
    ``FaultInjection`` and ``LoopbackGrpcServer`` halves). Named here rather than
    imported: the server owns its endpoint, so an import back would make the two a circle.
    """

    latency: float
    lifecycle: Lifecycle

    @property
    def jobs(self) -> dict[str, Any]: ...
    @property
    def calls(self) -> dict[str, int]: ...
    @property
    def created_jobs(self) -> int: ...
    def job(self, name_or_id: str) -> batch_v1.Job | None: ...
    def create_counts(self) -> dict[str, int]: ...
    def set_job_state(
        self, name_or_id: str, state: str, description: str | None = None
    ) -> None: ...
    def reset_faults(self) -> None: ...
    def fail_next(
        self, method: str, code: str, times: int = 1, message: str | None = None
    ) -> None: ...
    def lose_reply_after_commit(self, method: str, times: int, code: str) -> None: ...
    def deny(self, code: str, method: str | None = None, message: str | None = None) -> None: ...
    def allow(self, method: str | None = None) -> None: ...


class ControlEndpoint:
    """The HTTP endpoint of one server, serving from a daemon thread until :meth:`stop`."""

    def __init__(self, server: Controlled, host: str, port: int = 0) -> None:
        self._http = http.server.ThreadingHTTPServer((host, port), _handler(server))
        self._http.daemon_threads = True
        self.url = f"http://{host}:{self._http.server_address[1]}"
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="batch-server-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)


def job_json(server: Controlled, name_or_id: str) -> dict[str, Any] | None:
    """One job as the endpoint shows it (None when absent)."""
    job = server.job(name_or_id)
    return None if job is None else _describe(job)


def _describe(job: batch_v1.Job) -> dict[str, Any]:
    raw = batch_v1.Job.pb(job)
    return {
        "state": batch_v1.JobStatus.State(raw.status.state).name,
        "job": json_format.MessageToDict(raw, preserving_proto_field_name=True),
    }


def stats_json(server: Controlled) -> dict[str, Any]:
    calls = server.calls
    return {
        "calls": calls,
        "create_calls": calls.get("CreateJob", 0),
        "created_jobs": server.created_jobs,
        "create_counts": server.create_counts(),
    }


def apply_faults_json(server: Controlled, body: dict[str, Any]) -> None:
    """Apply a ``POST /faults`` body, in the order its keys are documented."""
    if body.get("reset"):
        server.reset_faults()
    if "latency" in body:
        server.latency = float(body["latency"])
    if (spec := body.get("fail_next")) is not None:
        server.fail_next(
            spec["method"],
            spec.get("code", "UNAVAILABLE"),
            int(spec.get("times", 1)),
            spec.get("message"),
        )
    if (spec := body.get("lose_reply_after_commit")) is not None:
        server.lose_reply_after_commit(
            spec.get("method", "CreateJob"),
            int(spec.get("times", 1)),
            spec.get("code", "UNAVAILABLE"),
        )
    if (spec := body.get("deny")) is not None:
        server.deny(spec.get("code", "PERMISSION_DENIED"), spec.get("method"), spec.get("message"))
    if (spec := body.get("allow")) is not None:
        server.allow(spec.get("method"))


def _handler(server: Controlled) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read stdout for addresses; keep it clean

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            value = json.loads(raw or b"{}")
            if not isinstance(value, dict):
                raise ValueError("the body must be a JSON object")
            return value

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/jobs":
                jobs = {name: _describe(job) for name, job in server.jobs.items()}
                self._reply(200, {"jobs": jobs})
            elif path == "/stats":
                self._reply(200, stats_json(server))
            elif path.startswith("/jobs/"):
                job = job_json(server, unquote(path[len("/jobs/") :]))
                self._reply(404 if job is None else 200, job or {"error": "no such job"})
            else:
                self._reply(404, {"error": f"no route {path}"})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            try:
                body = self._body()
                if path.startswith("/jobs/") and path.endswith("/state"):
                    ident = unquote(path[len("/jobs/") : -len("/state")])
                    server.set_job_state(ident, str(body["state"]), body.get("description"))
                    self._reply(200, job_json(server, ident))
                elif path == "/faults":
                    apply_faults_json(server, body)
                    self._reply(200, {"ok": True})
                elif path == "/lifecycle":
                    steps = [
                        (str(s), None if d is None else float(d)) for s, d in body["lifecycle"]
                    ]
                    resolve_steps(steps)  # validate before installing
                    server.lifecycle = steps
                    self._reply(200, {"ok": True})
                else:
                    self._reply(404, {"error": f"no route {path}"})
            except KeyError as exc:
                self._reply(404, {"error": str(exc)})
            except (ValueError, TypeError) as exc:
                self._reply(400, {"error": str(exc)})

    return Handler

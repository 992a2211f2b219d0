"""``kubectl wt logs``: a Local run's stored output, and a cloud run's lines from Cloud Logging.

Stand-ins, named as such: Cloud Logging is a small local HTTP server speaking
``entries:list`` (Google's API cannot be reached here), and its OAuth token endpoint
beside it. Everything else — API server, RBAC, operator, workflow processes — is real.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import batch_spec, cloud_run_spec, local_spec
from tests.integration.kubectl_plugin import kubectl_wt, manifest, plugin_env, start_kubectl_wt

pytestmark = pytest.mark.timeout(180)


async def test_logs_return_a_local_runs_full_output_after_it_finished(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any
) -> None:
    # Needs the operator to keep the output in its log ConfigMap (issue 14).
    start_operator()
    await runs.create("chatty", local_spec({"stdout_lines": 200}))
    await runs.wait_for("chatty", ["Succeeded"])
    expected = [f"stdout line {i}" for i in range(1, 201)]
    follow = await kubectl_wt(control_plane, "logs", "-f", "chatty", "-n", namespace)
    got = [x for x in follow.stdout.splitlines() if x.startswith("stdout line")]
    assert got == expected, follow.stderr
    once = await kubectl_wt(control_plane, "logs", "chatty", "-n", namespace)
    assert once.returncode == 0, once.stderr
    assert [x for x in once.stdout.splitlines() if x.startswith("stdout line")] == expected


def _log_configmap(uid: str, text: str, **annotations: str) -> dict[str, Any]:
    owner = {"apiVersion": "wt.dev/v1alpha1", "kind": "WorkflowRun", "name": "stored", "uid": uid}
    return {
        "metadata": {
            "name": f"wt-log-{uid}",
            "ownerReferences": [owner],
            "annotations": {f"wt.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
        },
        "data": {"output": text},
    }


async def test_logs_read_and_follow_the_stored_output(
    control_plane: Any, namespace: str, runs: Any, crds: Any
) -> None:
    # No operator: the test writes the run's status and log ConfigMap as the operator does.
    run = await runs.create("stored", local_spec())
    uid = run["metadata"]["uid"]
    await runs.patch_status("stored", {"phase": "Running"})
    proc = await kubectl_wt(control_plane, "logs", "stored", "-n", namespace)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no output yet (stored is Running)" in proc.stderr

    lines = [f"line {i:04d} {'x' * 40}\n" for i in range(1, 501)]
    cm = _log_configmap(uid, "".join(lines[:300]), log_complete="false")
    created = await runs.core.create_namespaced_config_map(namespace, cm)
    log = {"configMap": f"wt-log-{uid}", "uid": created.metadata.uid}
    await runs.patch_status("stored", {"log": log})
    proc = await kubectl_wt(control_plane, "logs", "stored", "-n", namespace)
    assert proc.stdout == "".join(lines[:300]) and "output so far" in proc.stderr

    following = await start_kubectl_wt(control_plane, "logs", "-f", "stored", "-n", namespace)
    assert following.stdout is not None
    first = await asyncio.wait_for(following.stdout.readexactly(len("".join(lines[:300]))), 30)
    assert first.decode() == "".join(lines[:300])
    # The operator cut the middle to stay bounded: head, a marker, the moving tail.
    cut = "".join(lines[:20]) + "[… cut …]\n" + "".join(lines[250:420])
    cm = _log_configmap(uid, cut, log_complete="false", log_truncated="true")
    await runs.core.replace_namespaced_config_map(f"wt-log-{uid}", namespace, cm)
    more = await asyncio.wait_for(following.stdout.readexactly(len("".join(lines[300:420]))), 30)
    assert more.decode() == "".join(lines[300:420])
    await runs.patch_status("stored", {"phase": "Succeeded", "exitCode": 0})
    final = "".join(lines[:20]) + "[… cut …]\n" + "".join(lines[300:])
    cm = _log_configmap(uid, final, log_complete="true", log_truncated="true", log_bytes="24000")
    await runs.core.replace_namespaced_config_map(f"wt-log-{uid}", namespace, cm)
    rest, err = await asyncio.wait_for(following.communicate(), 30)
    assert following.returncode == 0
    assert rest.decode() == "".join(lines[420:])  # each line exactly once, in order
    assert "the middle of this output was cut of 24000 bytes written" in err.decode()

    await runs.create("silent", local_spec())
    await runs.patch_status("silent", {"phase": "Succeeded", "exitCode": 0})
    proc = await kubectl_wt(control_plane, "logs", "silent", "-n", namespace)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no output stored for silent: the workflow printed nothing" in proc.stderr


class CloudLoggingStandIn:
    """STAND-IN for Google's Cloud Logging ``entries:list`` and its OAuth token endpoint.

    Google's APIs cannot be reached here. It serves what the real API does for a
    ``timestamp>=`` filter, two entries per page with ``nextPageToken``, and records
    each request's Authorization header and body.
    """

    TOKEN = "ya29.stand-in-token"

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    self._send({"access_token": stand_in.TOKEN, "expires_in": 3600})
                    return
                body = json.loads(raw)
                stand_in.requests.append((self.headers.get("Authorization", ""), body))
                after = re.search(r'timestamp>="([^"]+)"', body["filter"])
                found = [e for e in stand_in.entries if not after or e["timestamp"] >= after[1]]
                start = int(body.get("pageToken") or 0)
                page: dict[str, Any] = {"entries": found[start : start + 2]}
                if start + 2 < len(found):
                    page["nextPageToken"] = str(start + 2)
                self._send(page)

            def _send(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, second: int, text: str) -> None:
        stamp = f"2026-03-01T12:00:{second:02d}.000000Z"
        self.entries.append({"insertId": f"i{second}", "timestamp": stamp, "textPayload": text})


@pytest.fixture
def cloud_logging() -> Iterator[CloudLoggingStandIn]:
    stand_in = CloudLoggingStandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def google_env(cloud_logging: CloudLoggingStandIn, tmp_path: Path) -> dict[str, str]:
    """Application Default Credentials (a service-account key) and the endpoint, both local."""
    adc = tmp_path / "key.json"  # a service-account key, with the stand-in's token endpoint
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    adc.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "wt-proj",
                "private_key_id": "k1",
                "private_key": pem.decode(),
                "client_email": "reader@wt-proj.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{cloud_logging.url}/token",
            }
        )
    )
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
        "WT_KUBECTL_LOGGING_ENDPOINT": cloud_logging.url,
    }


async def test_batch_logs_print_query_link_and_the_lines_where_credentials_allow(
    control_plane: Any,
    namespace: str,
    runs: Any,
    crds: Any,
    cloud_logging: CloudLoggingStandIn,
    google_env: dict[str, str],
    tmp_path: Path,
) -> None:
    creds = google_env
    query = 'labels.job_uid="job-uid-1"'
    job = {
        "jobName": "projects/wt-proj/locations/europe-west4/jobs/j-1",
        "jobUid": "job-uid-1",
        "state": "RUNNING",
        "logsQuery": query,
        "logsUrl": "https://console.cloud.google.com/logs/query;query=x?project=wt-proj",
    }
    await runs.create("batch", batch_spec())
    await runs.patch_status("batch", {"phase": "Submitted", "cloudBatch": job})
    for second, text in enumerate(["one", "two", "three"]):
        cloud_logging.add(second, text)

    following = await start_kubectl_wt(
        control_plane, "logs", "-f", "batch", "-n", namespace, **creds
    )
    assert following.stdout is not None
    first = await asyncio.wait_for(following.stdout.readexactly(len("one\ntwo\nthree\n")), 30)
    assert first == b"one\ntwo\nthree\n"  # two pages of entries:list
    cloud_logging.add(3, "four")
    await runs.patch_status("batch", {"phase": "Succeeded", "cloudBatch": {"state": "SUCCEEDED"}})
    out, err = await asyncio.wait_for(following.communicate(), 60)
    assert following.returncode == 0, err.decode()
    assert out == b"four\n"  # followed until the job ended, no line twice
    assert f"Cloud Logging query: {query}" in err.decode()
    assert "Console: https://console.cloud.google.com/logs/query;query=x" in err.decode()
    auth, body = cloud_logging.requests[0]
    assert auth == f"Bearer {CloudLoggingStandIn.TOKEN}"
    assert body["resourceNames"] == ["projects/wt-proj"] and body["filter"] == query

    # No credentials at all: still the query and link, and why the lines are missing.
    no_creds = plugin_env(control_plane, HOME=str(tmp_path), NO_GCE_CHECK="True")
    no_creds.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    no_creds["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    proc = await kubectl_wt(control_plane, "logs", "batch", "-n", namespace, env=no_creds)
    assert proc.returncode == 0 and proc.stdout == ""
    assert f"Cloud Logging query: {query}" in proc.stderr
    assert "log lines not shown: no Google credentials found" in proc.stderr


async def test_a_batch_run_submitted_by_the_operator_shows_its_logs(
    start_operator: Any,
    control_plane: Any,
    namespace: str,
    runs: Any,
    batch_server: Any,
    cloud_logging: CloudLoggingStandIn,
    google_env: dict[str, str],
    tmp_path: Path,
) -> None:
    batch_server.lifecycle = [("RUNNING", 0.3), ("SUCCEEDED", 0.6)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    run = tmp_path / "cloud.yaml"
    run.write_text(manifest("cloud", batch_spec()))
    proc = await kubectl_wt(control_plane, "submit", "-f", str(run), "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    job = (await runs.get("cloud"))["status"]["cloudBatch"]
    cloud_logging.add(0, "task started")
    cloud_logging.add(1, "task done")
    proc = await kubectl_wt(
        control_plane, "logs", "cloud", "-n", namespace, env=plugin_env(control_plane, **google_env)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "task started\ntask done\n"
    # The query the operator recorded selects this job by its uid.
    _, body = cloud_logging.requests[-1]
    assert f'labels.job_uid="{job["jobUid"]}"' in body["filter"]
    assert body["resourceNames"] == [f"projects/{job['jobName'].split('/')[1]}"]
    described = await kubectl_wt(control_plane, "describe", "cloud", "-n", namespace)
    assert f"  Name:         {job['jobName']}" in described.stdout.splitlines()
    assert "  Logs:         https://console.cloud.google.com/" in described.stdout


async def test_a_cloud_run_job_run_shows_its_execution_and_its_logs(
    start_operator: Any,
    control_plane: Any,
    namespace: str,
    runs: Any,
    cloud_run_server: Any,
    cloud_logging: CloudLoggingStandIn,
    google_env: dict[str, str],
    tmp_path: Path,
) -> None:
    cloud_run_server.lifecycle = [("RUNNING", 0.3), ("SUCCEEDED", 0.6)]
    start_operator(
        CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, WT_OPERATOR_BATCH_POLL_INTERVAL="0.2"
    )
    run = tmp_path / "sandboxed.yaml"
    run.write_text(manifest("sandboxed", cloud_run_spec()))
    proc = await kubectl_wt(control_plane, "submit", "-f", str(run), "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    execution = (await runs.get("sandboxed"))["status"]["cloudRun"]
    cloud_logging.add(0, "sandbox: unpacking")
    cloud_logging.add(1, "sandbox: done")
    proc = await kubectl_wt(
        control_plane,
        "logs",
        "sandboxed",
        "-n",
        namespace,
        env=plugin_env(control_plane, **google_env),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sandbox: unpacking\nsandbox: done\n"
    short = execution["executionName"].rsplit("/", 1)[-1]
    _, body = cloud_logging.requests[-1]
    assert f'labels."run.googleapis.com/execution_name"="{short}"' in body["filter"]
    assert body["resourceNames"] == ["projects/wt-test-project"]
    assert f"Console: {execution['consoleUrl']}" in proc.stderr
    described = await kubectl_wt(control_plane, "describe", "sandboxed", "-n", namespace)
    lines = described.stdout.splitlines()
    assert f"  Name:         {execution['executionName']}" in lines
    assert "  State:        SUCCEEDED" in lines
    assert f"  Console:      {execution['consoleUrl']}" in lines

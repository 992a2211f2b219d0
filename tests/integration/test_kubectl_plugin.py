"""``kubectl wt`` through the installed kubectl, against the real API server and operator.

kubectl finds the plugin as a user's would: ``kubectl-wt`` (this venv's console
script) on PATH. Stand-ins, named as such: Cloud Logging is a small local HTTP
server speaking ``entries:list`` (Google's API cannot be reached here), and its
OAuth token endpoint beside it. Everything else — API server, RBAC, operator,
workflow processes — is real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import batch_spec, cloud_run_spec, local_spec
from wt_operator.api import human_duration

pytestmark = pytest.mark.timeout(180)

GROUP, VERSION, PLURAL = "wt.dev", "v1alpha1", "workflowruns"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "kubectl-plugin.md"


def plugin_env(control_plane: Any, **extra: str) -> dict[str, str]:
    """The admin's environment, with this venv's bin (holding kubectl-wt) on PATH."""
    env = control_plane.env()
    env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env["PATH"]])
    env.update(extra)
    return env


async def kubectl_wt(
    control_plane: Any, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl wt ARGS`` through the real kubectl binary."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(control_plane.bin_dir / "kubectl"), "wt", *args],
        capture_output=True,
        text=True,
        input=input,
        env=env or plugin_env(control_plane),
        timeout=150,
        check=False,
    )


async def start_kubectl_wt(
    control_plane: Any, *args: str, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(control_plane.bin_dir / "kubectl"),
        "wt",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=plugin_env(control_plane, **env),
    )


def manifest(name: str | None, spec: dict[str, Any]) -> str:
    meta = {"name": name} if name else {}
    return yaml.safe_dump(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkflowRun", "metadata": meta, "spec": spec}
    )


# ---------------------------------------------------------------- submit, wait, rerun


async def test_submit_wait_exits_with_the_workflows_exit_code(
    start_operator: Any, control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    start_operator()
    listed = await asyncio.to_thread(
        subprocess.run,
        [str(control_plane.bin_dir / "kubectl"), "plugin", "list"],
        capture_output=True,
        text=True,
        env=plugin_env(control_plane),
        check=False,
    )
    assert "/kubectl-wt" in listed.stdout  # kubectl itself finds the plugin on PATH
    ok = tmp_path / "nightly report.yaml"
    ok.write_text(manifest(None, local_spec({"sleep": 1, "stdout_lines": 2})))
    proc = await kubectl_wt(control_plane, "submit", "-f", str(ok), "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    assert re.fullmatch(r"nightly-report-[a-z0-9]{5}", name), proc.stdout  # generateName
    assert f"{name}: Running" in proc.stderr  # one plain line per transition (no TTY)
    assert f"{name}: Succeeded" in proc.stderr

    bad = manifest("bad", local_spec({"exit_code": 3, "stderr_lines": 2}))
    proc = await kubectl_wt(
        control_plane, "-n", namespace, "submit", "-f", "-", "--wait", input=bad
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "bad\n"
    assert "bad: Failed" in proc.stderr and "exit code 3" in proc.stderr
    assert "  stderr line 2" in proc.stderr  # why it failed, without another command

    # wait on a finished run answers at once, with the same code; on a TTY it redraws.
    primary, secondary = pty.openpty()
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [str(control_plane.bin_dir / "kubectl"), "wt", "wait", "wfr/bad", "-n", namespace],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=plugin_env(control_plane),
            timeout=60,
            check=False,
        )
        tty_text = os.read(primary, 65536).decode()
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 3
    assert "\x1b[2K" in tty_text and "bad: Failed" in tty_text


async def test_wait_times_out_with_124_and_a_cancelled_run_gives_130(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any
) -> None:
    start_operator()
    await runs.create("long", local_spec({"sleep": 120}))
    await runs.wait_for("long", ["Running"])
    proc = await kubectl_wt(control_plane, "wait", "long", "--timeout", "1s", "-n", namespace)
    assert proc.returncode == 124
    assert "timed out after 1s waiting for long (still Running)" in proc.stderr
    waiting = await start_kubectl_wt(control_plane, "wait", "long", "-n", namespace)
    await asyncio.sleep(2)  # the watch is open
    await runs.delete("long")
    _, err = await asyncio.wait_for(waiting.communicate(), 60)
    assert waiting.returncode == 130, err.decode()


async def test_rerun_creates_a_second_independent_run_that_succeeds(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any, tmp_path: Path
) -> None:
    start_operator()
    count, echo = tmp_path / "count", tmp_path / "echo"
    spec = local_spec({"append_to": str(count), "echo_file": str(echo)}, workflowRunId="first-id")
    await runs.create("first", spec, labels={"team": "geo"})
    await runs.wait_for("first", ["Succeeded"])
    proc = await kubectl_wt(control_plane, "rerun", "first", "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    second = proc.stdout.strip()
    assert second.startswith("first-") and second != "first"
    old, new = await runs.get("first"), await runs.get(second)
    assert old is not None and new is not None
    assert new["status"]["phase"] == "Succeeded"
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["metadata"]["annotations"]["wt.dev/rerun-of"] == "first"
    assert new["metadata"]["labels"] == {"team": "geo"}
    assert new["spec"]["config"] == old["spec"]["config"]
    # A new identity: the workflow was told the new run's uid, not the original's id.
    assert "workflowRunId" not in new["spec"]
    assert new["status"]["workflowRunId"] == new["metadata"]["uid"]
    assert f"env WT_INVOKERS__RUN_ID={new['metadata']['uid']}" in echo.read_text()
    assert count.read_text().splitlines() == ["ran", "ran"]  # it ran again, once
    assert old["status"]["phase"] == "Succeeded"  # the original is untouched

    named = await kubectl_wt(control_plane, "rerun", second, "--name", "third", "-n", namespace)
    assert named.stdout == "third\n", named.stderr
    third = await runs.get("third")
    assert third is not None and third["metadata"]["annotations"]["wt.dev/rerun-of"] == second


# ---------------------------------------------------------------- describe and logs


async def test_describe_shows_reason_message_timings_and_events(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any
) -> None:
    start_operator()
    await runs.create("fails", local_spec({"exit_code": 3, "stderr_lines": 4}))
    obj = await runs.wait_for("fails", ["Failed"])
    for _ in range(50):  # the Failed Event follows the status write
        if "Failed" in [e.reason for e in await runs.events("fails")]:
            break
        await asyncio.sleep(0.1)
    proc = await kubectl_wt(control_plane, "describe", "fails", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    status = obj["status"]
    assert "Phase:          Failed" in lines
    assert "Reason:         Failed" in lines
    assert lines[lines.index("Phase:          Failed") + 2].startswith("Message:        ")
    assert "                stderr line 4" in lines  # the whole message, under its label
    assert "Exit Code:      3" in lines
    assert any(line.startswith("Duration:       ") for line in lines)
    assert any(line.startswith(f"Completed:      {status['completionTime']}") for line in lines)
    events = lines[lines.index("Events:") + 3 :]
    assert [e.split()[1] for e in events][:2] == ["Running", "Failed"]  # oldest first
    assert all("wt-operator" in e for e in events)


async def test_durations_read_as_kubectl_prints_them(
    control_plane: Any, namespace: str, runs: Any
) -> None:
    # status.duration and the plugin's ages are meant to read like a Job's DURATION and
    # kubectl's ages; the API server's own table printer (LAST SEEN) is the reference.
    ages = [0, 45, 119, 125, 187, 599, 601, 2700, 10799, 10860, 7 * 3600 + 300, 30 * 3600]
    ages += [2 * 86400 + 7200, 7 * 86400, 9 * 86400, 800 * 86400, 3 * 365 * 86400 + 9 * 86400]
    now = dt.datetime.now(dt.UTC)
    for i, age in enumerate(ages):
        regarding = {"kind": "WorkflowRun", "name": f"age-{i}", "namespace": namespace}
        stamp = (now - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await runs.core.create_namespaced_event(
            namespace,
            {
                "metadata": {"name": f"age-{i}"},
                "involvedObject": regarding,
                "reason": "Age",
                "message": str(age),
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )
    table = control_plane.kubectl("get", "events", "-n", namespace, "--no-headers").stdout
    printed = {line.split()[-1]: line.split()[0] for line in table.splitlines()}
    for age in ages:
        # The printer ran a moment after the events were made: allow it a few seconds.
        ours = {human_duration(age + late) for late in range(4)}
        assert printed[str(age)] in ours, (age, printed[str(age)], ours)


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


# ---------------------------------------------------------------- RBAC and errors


def documented_roles() -> list[dict[str, Any]]:
    """The Roles docs/kubectl-plugin.md tells users to apply (its yaml blocks)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    docs = [d for block in blocks for d in yaml.safe_load_all(block) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") == "Role"]


async def test_the_documented_rbac_suffices_for_each_command(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any, tmp_path: Path
) -> None:
    start_operator()
    roles = {r["metadata"]["name"]: r for r in documented_roles()}
    assert set(roles) == {"wt-runs-viewer", "wt-runs-submitter"}
    kubeconfig: dict[str, str] = {}
    for role, account in (("wt-runs-viewer", "viewer"), ("wt-runs-submitter", "submitter")):
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=roles[role])
        kubeconfig[account] = str(control_plane.service_account_kubeconfig(namespace, account))
        control_plane.kubectl(
            "create",
            "rolebinding",
            account,
            "-n",
            namespace,
            f"--role={role}",
            f"--serviceaccount={namespace}:{account}",
        )
    run = tmp_path / "run.yaml"
    run.write_text(manifest(None, local_spec({"sleep": 1})))
    # --kubeconfig wins over KUBECONFIG (the admin's), and no -n: the context's namespace.
    proc = await kubectl_wt(
        control_plane, "--kubeconfig", kubeconfig["submitter"], "submit", "-f", str(run), "--wait"
    )
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    for command in ("wait", "describe", "logs"):
        proc = await kubectl_wt(control_plane, command, name, "--kubeconfig", kubeconfig["viewer"])
        assert proc.returncode == 0, (command, proc.stderr)
    proc = await kubectl_wt(control_plane, "rerun", name, "--kubeconfig", kubeconfig["viewer"])
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f'kubectl wt: forbidden: user "system:serviceaccount:{namespace}:viewer" may not create '
        f'workflowruns.wt.dev in namespace "{namespace}"; this command needs "create"'
    )
    assert proc.stderr.count("\n") == 1

    # Only `get` (no watch): wait still follows a run to its end, by polling.
    control_plane.kubectl(
        "create",
        "role",
        "getter",
        "-n",
        namespace,
        "--verb=get",
        "--resource=workflowruns.wt.dev",
    )
    getter = str(control_plane.service_account_kubeconfig(namespace, "getter"))
    control_plane.kubectl(
        "create",
        "rolebinding",
        "getter",
        "-n",
        namespace,
        "--role=getter",
        f"--serviceaccount={namespace}:getter",
    )
    await runs.create("polled", local_spec({"sleep": 3, "exit_code": 5}))
    proc = await kubectl_wt(control_plane, "wait", "polled", "--kubeconfig", getter)
    assert proc.returncode == 5, proc.stderr
    assert "polled: Running" in proc.stderr and "polled: Failed" in proc.stderr


async def test_errors_are_one_line_that_says_what_to_do(
    control_plane: Any, namespace: str, crds: Any, tmp_path: Path
) -> None:
    unreachable = tmp_path / "down.kubeconfig"
    unreachable.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    missing = tmp_path / "missing.yaml"
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("kind: [WorkflowRun\n")
    run = tmp_path / "run.yaml"
    run.write_text(manifest("r", local_spec({})))
    no_config = plugin_env(control_plane, KUBECONFIG=str(tmp_path / "none"), HOME=str(tmp_path))
    cases: list[tuple[list[str], dict[str, str] | None, str]] = [
        (
            ["describe", "nope", "-n", namespace],
            None,
            f'workflowrun "nope" not found in namespace "{namespace}" (list runs with: '
            f"kubectl get wfr -n {namespace}",
        ),
        (
            ["submit", "-f", str(run), "-n", "no-such-team"],
            None,
            'namespace "no-such-team" not found (list namespaces with: kubectl get namespaces',
        ),
        (["wait", "x"], no_config, "no kubeconfig found"),
        (["logs", "x", "--context", "nope"], None, 'cannot use context "nope"'),
        (["wait", "x", "--kubeconfig", str(unreachable)], None, "cannot reach the API server"),
        (["wait", "x", "--kubeconfig", str(missing)], None, "does not exist"),
        (["submit", "-f", str(missing)], None, f"cannot read {missing}"),
        (["submit", "-f", str(not_yaml)], None, "is not valid YAML (line 2)"),
        (["wait", "x", "--timeout", "soon"], None, 'invalid duration "soon"'),
    ]
    for args, env, says in cases:
        proc = await kubectl_wt(control_plane, *args, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("kubectl wt: ") and says in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


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

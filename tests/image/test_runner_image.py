"""The chart's two containers under runc: a workflow in the runner finds nothing of the operator.

The operator and runner containers are laid out as the rendered chart lays them out
(command, arguments, environment, uid and gid, read-only root, volumes): the socket
emptyDir is one host folder both containers mount, each container's own emptyDir /tmp
is its own tmpfs, and the projected ServiceAccount token is a folder mounted in the
operator container only. STAND-IN, named as such: the token is a test string (no
kubelet here issues one); the operator logs in with the test API server's kubeconfig.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.image.oci import Container
from tests.image.test_image import TERMINAL, start_operator
from tests.integration.conftest import local_spec
from tests.unit.chart import pod_of, render
from wt_envtest import Runs
from wt_operator.api import LOG_KEY, log_configmap_name
from wt_testkit.workflows import read_echo_file

pytestmark = pytest.mark.timeout(900)

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN = "stand-in-serviceaccount-token"
OPERATOR_CANARY = "WT_TEST_OPERATOR_ONLY=operator-environment-canary"
OPERATOR_FILE = "/tmp/operator-private-file"


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _layout(
    container: dict[str, Any], volumes: dict[str, Path]
) -> tuple[dict[str, Path], dict[str, Path]]:
    """(read-only binds, writable binds) of ``container``'s volumeMounts; /tmp is a tmpfs."""
    binds: dict[str, Path] = {}
    rw_binds: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        if mount["mountPath"] == "/tmp":
            continue  # runtime_spec(readonly=True) gives every container a /tmp of its own
        target = binds if mount.get("readOnly") else rw_binds
        target[mount["mountPath"]] = volumes[mount["name"]]
    return binds, rw_binds


async def _log_text(runs: Runs, name: str) -> str:
    obj = await runs.get(name)
    assert obj is not None
    cm_name = log_configmap_name(obj["metadata"]["uid"])
    for _ in range(100):
        cms = await runs.core.list_namespaced_config_map(runs.namespace)
        for cm in cms.items:
            if cm.metadata.name == cm_name and cm.data:
                return str(cm.data[LOG_KEY])
        await asyncio.sleep(0.1)
    raise AssertionError("no log ConfigMap")


async def test_a_workflow_in_the_runner_container_finds_nothing_of_the_operator(
    run_image: Callable[..., Container],
    container_kubeconfig: Path,
    runs: Runs,
    namespace: str,
    crds: Any,
    bin_dir: Path,
    tmp_path: Path,
) -> None:
    pod = pod_of(render(bin_dir / "helm"))
    by_name = {c["name"]: c for c in pod["containers"]}
    operator_spec, runner_spec = by_name["operator"], by_name["runner"]
    assert pod["automountServiceAccountToken"] is False

    socket_dir = tmp_path / "runner-socket"
    socket_dir.mkdir()
    socket_dir.chmod(0o777)  # an emptyDir: writable by every uid of the pod
    token_dir = tmp_path / "kube-api-access"
    token_dir.mkdir()
    (token_dir / "token").write_text(TOKEN)
    for path in (tmp_path, token_dir, token_dir / "token"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    results_dir = tmp_path / "results"  # the chart's results volume: written by the workflow
    results_dir.mkdir()
    results_dir.chmod(0o777)
    volumes = {
        "runner-socket": socket_dir,
        "kube-api-access": token_dir,
        "results": results_dir,
    }

    runner_sc = runner_spec["securityContext"]
    binds, rw_binds = _layout(runner_spec, volumes)
    runner = run_image(
        command=[*runner_spec["command"], *runner_spec["args"]],
        env=_env(runner_spec),
        user=(runner_sc["runAsUser"], runner_sc["runAsGroup"]),
        readonly=runner_sc["readOnlyRootFilesystem"],
        binds=binds,
        rw_binds=rw_binds,
    ).start()
    deadline = time.monotonic() + 60
    while not (socket_dir / "runner.sock").exists():
        assert time.monotonic() < deadline, runner.output()
        await asyncio.sleep(0.2)

    operator_env = _env(operator_spec)
    for port in ("WT_OPERATOR_HEALTH_PORT", "WT_OPERATOR_METRICS_PORT"):
        del operator_env[port]  # the host's network is shared: start_operator picks free ones
    name, _, value = OPERATOR_CANARY.partition("=")
    binds, rw_binds = _layout(operator_spec, volumes)
    assert binds == {TOKEN_DIR: token_dir}  # the token: in the operator container only
    uid = pod["securityContext"]["runAsUser"]
    operator = await asyncio.to_thread(
        start_operator,
        run_image,
        container_kubeconfig,
        namespace,
        env={**operator_env, name: value},
        user=(uid, pod["securityContext"]["runAsGroup"]),
        readonly=operator_spec["securityContext"]["readOnlyRootFilesystem"],
        binds=binds,
        rw_binds=rw_binds,
    )
    operator.path(OPERATOR_FILE).write_text("operator-private-text")
    os.chown(operator.path(OPERATOR_FILE), uid, 0)

    tries = [f"{TOKEN_DIR}/token", "/etc/wt/kubeconfig", OPERATOR_FILE]
    await runs.create(
        "nosy",
        local_spec(
            {
                "echo_file": "/tmp/echo",
                "try_read": ",".join(tries),
                "scan_environ": value,
                "sleep": 2,
            },
            resultsUrl="file:///results/nosy/",  # under the chart's localResultsRoot
        ),
    )
    echo_path = runner.path("/tmp/echo")
    deadline = time.monotonic() + 60
    while not echo_path.exists():
        assert time.monotonic() < deadline, operator.output()[-4000:]
        await asyncio.sleep(0.2)
    echo = read_echo_file(echo_path)
    # The workflow runs in the runner container, as the runner's uid, under the runner.
    [workflow] = [p for p in runner.processes() if p.pid == echo.pid]
    assert workflow.uid == runner_sc["runAsUser"] != uid
    assert not [p for p in runner.processes() if "wt-operator" in " ".join(p.argv)]
    # (pids inside two namespaces may be equal numbers: compare the host's)
    assert all(p.host_pid != workflow.host_pid for p in operator.processes())

    run = await runs.wait_for("nosy", TERMINAL, timeout=60)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    output = (await _log_text(runs, "nosy")).splitlines()
    verdicts = {line.partition(" ")[2]: line.partition(" ")[0] for line in output}
    assert verdicts[f"{TOKEN_DIR}/token"] == "DENIED"
    assert verdicts[OPERATOR_FILE] == "DENIED"  # the operator's /tmp is not the runner's
    # runc creates a bind mount's target in the image's root, which this test's containers
    # share (a pod's containers each have their own): the runner sees an empty file there.
    assert verdicts["/etc/wt/kubeconfig"] in ("DENIED", "EMPTY")
    assert not [line for line in output if line.startswith(("READ", "FOUND"))], output
    assert any(line.startswith("SCANNED ") and line != "SCANNED 0" for line in output)
    assert not runner.path(f"{TOKEN_DIR}/token").exists()
    # Nothing of the operator's environment reached the workflow either.
    assert name not in echo.env
    assert "KUBECONFIG" not in echo.env
    assert echo.env["CONDA_PREFIX"] == "/workspace/.pixi/envs/default"
    assert "oom_score_adj 1000" in echo_path.read_text().splitlines()
    assert await asyncio.to_thread(operator.stop, 30) == 0
    assert await asyncio.to_thread(runner.stop, 30) == 0

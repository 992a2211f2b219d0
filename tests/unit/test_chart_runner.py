"""The chart's runner container, rendered by the real helm binary: how it isolates workflows.

What an admin gets by default: Local workflows run in a second container of the operator
pod, under another uid, with no ServiceAccount token, no view of the operator's
processes, a read-only root and (with the prefix launcher) a read-only workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.chart import pod_of, render, render_error

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def helm(bin_dir: Path) -> Path:
    return bin_dir / "helm"


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["containers"]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def env(container: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_by_default_workflows_run_in_a_runner_container_without_the_token(helm: Path) -> None:
    pod = pod_of(render(helm, "workspace.image=registry/workflows:1"))
    by_name = containers(pod)
    assert set(by_name) == {"operator", "runner"}
    operator, runner = by_name["operator"], by_name["runner"]
    # No token anywhere but in the operator container.
    assert pod["automountServiceAccountToken"] is False
    assert TOKEN_DIR in mounts(operator)
    token_volume = mounts(operator)[TOKEN_DIR]["name"]
    assert all(m["name"] != token_volume for m in runner["volumeMounts"])
    assert not any(path.startswith("/var/run/secrets") for path in mounts(runner))
    [projected] = [v for v in pod["volumes"] if v["name"] == token_volume]
    sources = projected["projected"]["sources"]
    assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}} in sources
    # Another uid, no shared process namespace, a read-only root.
    assert not pod.get("shareProcessNamespace", False)
    operator_uid = pod["securityContext"]["runAsUser"]
    assert runner["securityContext"]["runAsUser"] != operator_uid
    assert runner["securityContext"]["runAsNonRoot"] is True
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert runner["securityContext"]["allowPrivilegeEscalation"] is False
    # The operator's /tmp is its own; the runner gets another.
    assert mounts(operator)["/tmp"]["name"] != mounts(runner)["/tmp"]["name"]
    # The prefix launcher only reads the workspace.
    assert mounts(runner)["/workspace"]["readOnly"] is True
    # One socket both see, served to the operator's uid only.
    socket = env(operator)["WT_OPERATOR_RUNNER_SOCKET"]
    assert socket is not None
    assert runner["command"] == ["tini", "--", "wt-runner"]
    assert f"--socket={socket}" in runner["args"]
    assert f"--allow-uid={operator_uid}" in runner["args"]
    socket_dir = str(Path(socket).parent)
    assert mounts(operator)[socket_dir]["name"] == mounts(runner)[socket_dir]["name"]
    probe = ["wt-runner", "--probe", f"--socket={socket}"]
    assert runner["livenessProbe"]["exec"]["command"] == probe
    assert runner["readinessProbe"]["exec"]["command"] == probe
    # The runner's own environment holds nothing of the operator's settings.
    assert set(env(runner)) == {"TMPDIR", "HOME"}


def test_the_pixi_launcher_gets_a_writable_workspace(helm: Path) -> None:
    pod = pod_of(render(helm, "workspace.image=x", "operator.localLauncher=pixi"))
    assert mounts(containers(pod)["runner"])["/workspace"]["readOnly"] is False


def test_runner_disabled_runs_workflows_in_the_operator_container(helm: Path) -> None:
    pod = pod_of(render(helm, "runner.enabled=false"))
    assert set(containers(pod)) == {"operator"}
    assert "automountServiceAccountToken" not in pod  # the usual automounted token
    assert "WT_OPERATOR_RUNNER_SOCKET" not in env(containers(pod)["operator"])


def test_runner_values_reach_the_operator_and_the_runner(helm: Path) -> None:
    pod = pod_of(
        render(
            helm,
            "runner.timeoutSeconds=7",
            "runner.runAsUser=20002",
            "runner.resources.limits.memory=8Gi",
        )
    )
    operator, runner = containers(pod)["operator"], containers(pod)["runner"]
    assert env(operator)["WT_OPERATOR_RUNNER_TIMEOUT"] == "7"
    assert runner["securityContext"]["runAsUser"] == 20002
    assert runner["resources"]["limits"]["memory"] == "8Gi"


def test_an_operator_uid_set_explicitly_is_the_one_served(helm: Path) -> None:
    pod = pod_of(render(helm, "podSecurityContext.runAsUser=null", "runner.operatorUid=1000700000"))
    assert "--allow-uid=1000700000" in containers(pod)["runner"]["args"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("runner.runAsUser=10001",), "must differ from the operator's uid"),
        (("podSecurityContext.runAsUser=null",), "needs the operator's uid"),
        (("runner.shareProcessNamespace=true",), "additional properties"),
        (("runner.timeoutSeconds=0",), "timeoutSeconds"),
    ],
)
def test_unsafe_or_unknown_runner_values_fail(
    helm: Path, sets: tuple[str, ...], message: str
) -> None:
    assert message in render_error(helm, *sets)

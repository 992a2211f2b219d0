"""The image as a cluster would run it: its own ENTRYPOINT, against the real API server.

Each container is runc on the derived test image (the operator image plus a workspace),
started like ``docker run IMAGE --namespace NS --standalone``: tini as PID 1, the image's
user, a read-only root with a tmpfs /tmp where the chart's pod has them, the host's
network to reach the API server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hack.image import build
from tests.image.oci import Container, ImageConfig, Proc
from tests.integration.conftest import local_spec
from wt_envtest import Runs, free_port
from wt_testkit.workflows import read_echo_file

# The first test to need the image may build it from nothing (about 3 minutes).
pytestmark = pytest.mark.timeout(900)

KUBECONFIG = "/etc/wt/kubeconfig"
TERMINAL = ("Succeeded", "Failed", "Cancelled")
SITE_PACKAGES = "opt/wt/lib/python3.11/site-packages"


def start_operator(
    run_image: Callable[..., Container],
    kubeconfig: Path,
    namespace: str,
    *,
    timeout: float = 60,
    **options: Any,
) -> Container:
    """The image's own ``tini -- wt-operator``, watching ``namespace``; once it is healthy."""
    health = free_port()
    env = {
        "KUBECONFIG": KUBECONFIG,
        "WT_OPERATOR_HEALTH_PORT": str(health),
        "WT_OPERATOR_METRICS_PORT": str(free_port()),
        **options.pop("env", {}),
    }
    container = run_image(
        args=["--namespace", namespace, "--standalone", "--verbose"],
        env=env,
        binds={KUBECONFIG: kubeconfig, **options.pop("binds", {})},
        **options,
    ).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.proc is not None and container.proc.poll() is not None:
            raise AssertionError(f"the container exited early:\n{container.output()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1):
                return container
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the operator was not healthy in {timeout} s:\n{container.output()}")


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


def init_and_operator(procs: list[Proc]) -> tuple[Proc, Proc]:
    (init,) = [p for p in procs if p.pid == 1]
    (operator,) = [p for p in procs if p.ppid == 1 and "wt-operator" in " ".join(p.argv)]
    return init, operator


def test_the_image_declares_tini_uid_10001_and_holds_no_test_kit(
    operator_image: build.Built, rootfs: Path
) -> None:
    info = build.inspect(operator_image.id)
    assert info is not None
    config = ImageConfig.from_inspect(info)
    assert config.entrypoint == ["tini", "--", "wt-operator"]
    assert config.cmd == ["--all-namespaces"]
    assert config.user == "10001:0"
    assert config.workdir == "/workspace"
    env = dict(e.split("=", 1) for e in config.env)
    assert env["WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD"] == "/workspace"
    assert env["WT_OPERATOR_LOCAL_LAUNCHER"] == "prefix"
    assert env["HOME"] == "/tmp"

    site = rootfs / SITE_PACKAGES
    assert (site / "wt_operator").is_dir()
    assert (site / "wt_invokers").is_dir()
    for test_only in ("wt_invokers/testing", "wt_testkit", "wt_envtest", "pytest", "rattler_build"):
        assert not (site / test_only).exists(), f"{test_only} is in the image"
    assert not (site / "pip").exists(), "pip is in the image"
    # The test build's pixi is the project's STAND-IN, at the path the real pixi has.
    assert "STAND-IN" in (rootfs / "usr/local/bin/pixi").read_text()


async def test_a_local_workflowrun_succeeds_in_the_image_under_tini(
    run_image: Callable[..., Container],
    container_kubeconfig: Path,
    runs: Runs,
    namespace: str,
    crds: Any,
) -> None:
    # The chart's pod: the image's user, read-only root, an empty /tmp, default launcher.
    container = await asyncio.to_thread(
        start_operator, run_image, container_kubeconfig, namespace, readonly=True
    )
    await runs.create(
        "smoke",
        local_spec(
            {
                "echo_file": "/tmp/echo",
                # Left behind in a session of its own: orphaned when the workflow exits.
                "grandchild_setsid": True,
                "grandchild_sleep": 2,
                "grandchild_pid_file": "/tmp/grandchild.pid",
            }
        ),
    )
    run = await runs.wait_for("smoke", TERMINAL, timeout=60)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["exitCode"] == 0

    echo = read_echo_file(container.path("/tmp/echo"))
    assert echo.cwd == "/workspace"
    assert echo.env["CONDA_PREFIX"] == "/workspace/.pixi/envs/default"

    init, operator = init_and_operator(container.processes())
    assert init.argv[:3] == ["tini", "--", "wt-operator"]
    assert (operator.uid, operator.gid) == (10001, 0)
    assert (init.uid, init.gid) == (10001, 0)

    # The orphan is re-parented to PID 1; tini reaps it when it ends (Python as PID 1
    # would leave a zombie behind for every such process).
    grandchild = int(container.path("/tmp/grandchild.pid").read_text())
    await eventually(
        lambda: all(p.pid != grandchild for p in container.processes()),
        15,
        "the orphaned grandchild reaped",
    )
    assert not [p for p in container.processes() if p.state == "Z"]

    # SIGTERM to PID 1, as a kubelet sends it: tini passes it on, the operator stops cleanly.
    assert await asyncio.to_thread(container.stop, 30) == 0


async def test_an_arbitrary_uid_in_group_0_runs_workflows_with_the_pixi_launcher(
    run_image: Callable[..., Container],
    container_kubeconfig: Path,
    runs: Runs,
    namespace: str,
    crds: Any,
) -> None:
    # OpenShift's restricted SCC: a random uid, group 0, root filesystem as in the image.
    # The pixi launcher fails the run unless /usr/local/bin/pixi is there (a stand-in here).
    container = await asyncio.to_thread(
        start_operator,
        run_image,
        container_kubeconfig,
        namespace,
        user=(12345, 0),
        readonly=False,
        env={"WT_OPERATOR_LOCAL_LAUNCHER": "pixi"},
    )
    await runs.create("openshift", local_spec({"echo_file": "/tmp/echo-openshift"}))
    run = await runs.wait_for("openshift", TERMINAL, timeout=60)
    assert run["status"]["phase"] == "Succeeded", run["status"]

    _, operator = init_and_operator(container.processes())
    assert (operator.uid, operator.gid) == (12345, 0)
    echo = read_echo_file(container.path("/tmp/echo-openshift"))
    assert echo.cwd == "/workspace"
    assert echo.env["HOME"] == "/tmp"
    assert await asyncio.to_thread(container.stop, 30) == 0


PROBE = r"""
import json, os
writable, made = [], {}
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    for path in [root, *(os.path.join(root, f) for f in files)]:
        if not os.path.islink(path) and os.access(path, os.W_OK):
            writable.append(path)
for folder in ("/tmp", "/var/tmp", "/workspace", "/", "/etc", "/opt/wt", "/run/lock"):
    try:
        with open(os.path.join(folder, ".probe"), "w"):
            pass
        os.unlink(os.path.join(folder, ".probe"))
        made[folder] = True
    except OSError:
        made[folder] = False
print(json.dumps({"writable": writable, "made": made}))
"""


@pytest.mark.parametrize("user", [None, (12345, 0)], ids=["image-user", "arbitrary-uid"])
def test_only_tmp_and_workspace_are_writable(
    run_image: Callable[..., Container], user: tuple[int, int] | None
) -> None:
    container = run_image(command=["python3", "-c", PROBE], user=user, readonly=False)
    code, output = container.run(timeout=120)
    assert code == 0, output
    probe = json.loads(output.strip().splitlines()[-1])
    outside = {p for p in probe["writable"] if not p.startswith(("/tmp/", "/workspace/"))}
    assert outside == {"/tmp", "/workspace"}
    assert probe["made"] == {
        "/tmp": True,
        "/var/tmp": True,  # the same folder: /var/tmp -> /tmp
        "/workspace": True,
        "/": False,
        "/etc": False,
        "/opt/wt": False,
        "/run/lock": False,
    }

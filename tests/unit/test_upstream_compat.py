"""Upstream wt-invokers' published behaviour, written anew, run against this library.

Exists so drop-in compatibility cannot regress: each test states what a program
written against upstream (v0.3) relies on. Where this project deliberately
differs, the README's "Differences from upstream" table says so and why.
"""

from __future__ import annotations

import json
import signal
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rattler import MatchSpec

from wt_invokers import CloudBatchInvoker, InvocationTimeoutError, LocalSubprocessInvoker
from wt_invokers.abstract import AbstractInvoker
from wt_invokers.utils import yaml_to_json
from wt_testkit.workflows import SAMPLE_WORKFLOW, make_workspace, workflow_config

SPEC = MatchSpec("test-workflow>=1.0.0")


@dataclass
class RecordingInvoker(AbstractInvoker):
    """A custom invoker as upstream documents them: a dataclass implementing the hooks."""

    waitable: bool = True
    exit_code: int = 0
    fail_in: str = ""
    calls: list[str] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)

    async def is_installed(self) -> bool:
        return True

    async def install(self) -> None:
        pass

    @property
    def is_waitable(self) -> bool:
        return self.waitable

    async def _pre_run(self) -> None:
        await super()._pre_run()
        self.calls.append("pre")
        self.run_state["from_pre"] = self.run_args.get("token")
        if self.fail_in == "pre":
            raise OSError("pre failed")

    async def _run(self, workflow_run_id: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append("run")
        self.seen["run_state_in_run"] = dict(self.run_state)
        if self.fail_in == "run":
            raise OSError("run failed")

    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        self.calls.append("wait")
        self.seen["run_args_in_wait"] = dict(self.run_args)
        if self.fail_in in ("wait", "both"):
            raise InvocationTimeoutError(error_msg or "too slow")
        return self.exit_code

    async def _post_run(self) -> None:
        await super()._post_run()
        self.calls.append("post")
        if self.fail_in in ("post", "both"):
            raise OSError("upload failed")


async def run(inv: AbstractInvoker, **kwargs: Any) -> None:
    await inv.run("run-1", "k: v", "file:///tmp/r", "sequential", False, **kwargs)


# -- the dataclass base ------------------------------------------------------------------


def test_a_dataclass_subclass_is_constructed_with_matchspec_and_results_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WT_INVOKERS__RESULTS_ENV_VAR", raising=False)
    inv = RecordingInvoker(matchspec=SPEC)
    assert inv.matchspec == SPEC and inv.results_env_var == "WT_RESULTS"
    assert RecordingInvoker(SPEC, "MY_RESULTS").results_env_var == "MY_RESULTS"
    monkeypatch.setenv("WT_INVOKERS__RESULTS_ENV_VAR", "FROM_ENV")
    assert RecordingInvoker(matchspec=SPEC).results_env_var == "FROM_ENV"


def test_the_abstract_base_and_an_incomplete_subclass_cannot_be_instantiated() -> None:
    @dataclass
    class Incomplete(AbstractInvoker):
        async def is_installed(self) -> bool:
            return True

    with pytest.raises(TypeError, match="Can't instantiate abstract class"):
        AbstractInvoker(matchspec=SPEC)  # type: ignore[abstract]
    with pytest.raises(TypeError, match="Can't instantiate abstract class"):
        Incomplete(matchspec=SPEC)  # type: ignore[abstract]


# -- the lifecycle -----------------------------------------------------------------------


async def test_run_and_wait_drive_the_hooks_in_order_and_return_to_idle() -> None:
    inv = RecordingInvoker(matchspec=SPEC, exit_code=3)
    assert not inv.is_running and dict(inv.run_args) == {}
    await run(inv, token="t-1")
    assert inv.is_running
    assert inv.run_args["workflow_run_id"] == "run-1" and inv.run_args["token"] == "t-1"
    assert inv.run_args["extra_env"] is None and inv.run_args["lithops_config_text"] is None
    with pytest.raises(TypeError):
        inv.run_args["token"] = "changed"  # type: ignore[index]
    assert await inv.wait() == 3
    assert inv.calls == ["pre", "run", "wait", "post"]
    assert inv.seen["run_state_in_run"] == {"from_pre": "t-1"}
    assert inv.seen["run_args_in_wait"]["token"] == "t-1"
    assert not inv.is_running and dict(inv.run_args) == {} and inv.run_state == {}


async def test_run_while_running_and_wait_while_idle_raise_runtime_error() -> None:
    inv = RecordingInvoker(matchspec=SPEC)
    with pytest.raises(RuntimeError, match=r"wait\(\) called while not running"):
        await inv.wait()
    assert inv.calls == []  # _post_run is not run from IDLE
    await run(inv)
    with pytest.raises(RuntimeError, match="already running"):
        await run(inv)
    assert await inv.wait() == 0


@pytest.mark.parametrize("where", ["pre", "run"])
async def test_a_failing_start_leaves_the_invoker_idle(where: str) -> None:
    inv = RecordingInvoker(matchspec=SPEC, fail_in=where)
    with pytest.raises(OSError, match=f"{where} failed"):
        await run(inv)
    assert not inv.is_running and inv.run_state == {} and dict(inv.run_args) == {}


async def test_post_run_runs_when_wait_fails_and_its_own_failure_is_never_hidden() -> None:
    inv = RecordingInvoker(matchspec=SPEC, fail_in="wait")
    await run(inv)
    with pytest.raises(InvocationTimeoutError):
        await inv.wait(error_msg="budget")
    assert inv.calls[-2:] == ["wait", "post"] and not inv.is_running

    inv = RecordingInvoker(matchspec=SPEC, fail_in="post", exit_code=0)
    await run(inv)
    with pytest.raises(OSError, match="upload failed"):
        await inv.wait()
    assert not inv.is_running

    inv = RecordingInvoker(matchspec=SPEC, fail_in="both")
    await run(inv)
    with pytest.raises(OSError, match="upload failed") as info:
        await inv.wait()
    assert isinstance(info.value.__context__, InvocationTimeoutError)


async def test_a_non_waitable_invoker_is_idle_after_run_and_may_run_again() -> None:
    inv = RecordingInvoker(matchspec=SPEC, waitable=False)
    await run(inv)
    assert not inv.is_running
    await run(inv)
    assert await inv.wait() == 0
    assert inv.calls == ["pre", "run", "pre", "run", "wait", "post"]


# -- LocalSubprocessInvoker --------------------------------------------------------------


def test_local_takes_upstreams_positional_order_and_keeps_cwd_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD", raising=False)
    inv = LocalSubprocessInvoker(MatchSpec("my-workflow>=1.0.0"), "MY_RESULTS", "relative/ws")
    assert (inv.results_env_var, inv.cwd) == ("MY_RESULTS", "relative/ws")
    assert inv.entrypoint == "pixi run -e default my-workflow"
    assert inv.is_waitable is True
    # None means "the process's current directory when a call is made".
    inv = LocalSubprocessInvoker(matchspec=MatchSpec("my-workflow"))
    assert inv.cwd is None
    monkeypatch.chdir(tmp_path)
    assert inv.workdir == tmp_path
    monkeypatch.setenv("WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD", "/srv/ws")
    assert LocalSubprocessInvoker(matchspec=MatchSpec("my-workflow")).cwd == "/srv/ws"


async def test_install_is_not_supported_with_upstreams_message() -> None:
    with pytest.raises(NotImplementedError, match="Dynamic installation of workflows is not yet"):
        await LocalSubprocessInvoker(matchspec=MatchSpec("my-workflow")).install()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("compat") / "ws")


async def test_local_run_wait_and_a_failing_check_output_as_upstream(
    workspace: Path, tmp_path: Path
) -> None:
    inv = LocalSubprocessInvoker(
        matchspec=MatchSpec(SAMPLE_WORKFLOW), cwd=str(workspace), launcher="prefix"
    )
    results = (tmp_path / "results").as_uri()
    await inv.run("r1", workflow_config(exit_code=4), results, "sequential", False)
    assert inv.is_running
    assert await inv.wait(timeout=30) == 4  # a failed workflow is an exit code, not an error
    assert not inv.is_running
    await inv.run("r2", workflow_config(kill_self="TERM"), results, "sequential", False)
    assert await inv.wait(timeout=30) == -signal.SIGTERM  # Python's returncode convention
    with pytest.raises(RuntimeError, match="broken"):
        await inv.check_output(["fail", "2", "broken"])
    assert await inv.check_output(["--version"]) == f"{SAMPLE_WORKFLOW} 1.2.0"


async def test_local_wait_past_its_timeout_raises_invocation_timeout_error(
    workspace: Path, tmp_path: Path
) -> None:
    inv = LocalSubprocessInvoker(
        MatchSpec(SAMPLE_WORKFLOW), cwd=str(workspace), launcher="prefix", kill_grace_seconds=0.5
    )
    await inv.run("r", workflow_config(sleep=30), tmp_path.as_uri(), "sequential", False)
    with pytest.raises(InvocationTimeoutError, match="custom message"):
        await inv.wait(timeout=0.2, error_msg="custom message")
    assert not inv.is_running


# -- utils and the Cloud Batch module ----------------------------------------------------


def test_yaml_to_json_converts_and_rejects_invalid_yaml_with_value_error() -> None:
    assert json.loads(yaml_to_json("name: test\nvalue: 42\nitems:\n  - a\n  - b\n")) == {
        "name": "test",
        "value": 42,
        "items": ["a", "b"],
    }
    assert json.loads(yaml_to_json('{"already": "json"}')) == {"already": "json"}
    with pytest.raises(ValueError, match=r"^Invalid YAML: "):
        yaml_to_json("invalid: yaml: [")


async def test_cloud_batch_is_available_constructible_and_not_waitable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wt_invokers.cloud_batch import GCP_AVAILABLE

    assert GCP_AVAILABLE is True
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    inv = CloudBatchInvoker(matchspec=MatchSpec("test-workflow>=1.0.0"))
    assert str(inv.matchspec) == str(MatchSpec("test-workflow>=1.0.0"))  # no __eq__ in rattler
    assert inv.is_waitable is False and await inv.is_installed() is True
    assert await inv.wait() == 0
    assert inv.entrypoint == "pixi run -e default test-workflow"
    with pytest.raises(NotImplementedError, match="Dynamic installation of workflows"):
        await inv.install()
    with pytest.raises(ValueError, match="docker_image_uri is required"):
        await inv.run("r", "a: 1", "gs://b/r", "sequential", False)


# -- mixins and the sandbox invoker (upstream v0.3) ---------------------------------------


def test_pixi_unpack_error_carries_returncode_stdout_and_stderr() -> None:
    from wt_invokers import InvokerError, PixiUnpackError

    err = PixiUnpackError("pixi-unpack failed", returncode=2, stdout=b"", stderr=b"boom")
    assert (err.returncode, err.stdout, err.stderr) == (2, b"", b"boom")
    assert isinstance(err, InvokerError) and str(err) == "pixi-unpack failed"


def sandbox_with(tmp_path: Path, **run_args: Any) -> Any:
    from wt_invokers.sandbox import SandboxInvoker

    inv = SandboxInvoker(matchspec=MatchSpec("my-wf>=1.0.0"), work_dir=str(tmp_path / "w"))
    inv._run_args = dict(run_args)  # what run() would have recorded, as upstream's tests do
    return inv


async def test_sandbox_identity_matches_upstream(tmp_path: Path) -> None:
    inv = sandbox_with(tmp_path)
    assert inv.is_waitable is True and await inv.is_installed() is True
    assert inv.work_dir == str(tmp_path / "w")
    with pytest.raises(NotImplementedError):
        await inv.install()
    with pytest.raises(NotImplementedError, match="check_output"):
        await inv.check_output(["--version"])


async def test_the_unpack_hook_requires_a_supported_environment_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="environment_tar_url is required"):
        await sandbox_with(tmp_path)._pre_run()
    with pytest.raises(ValueError, match="Unsupported scheme"):
        await sandbox_with(tmp_path, environment_tar_url="s3://bucket/env.tar")._pre_run()


async def test_the_upload_hook_validates_as_upstream(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with pytest.raises(ValueError, match="results_url is required"):
        await sandbox_with(tmp_path, results_upload_url="file:///x")._post_run()
    with pytest.raises(ValueError, match="results_upload_url is required"):
        await sandbox_with(tmp_path, results_url=results.as_uri())._post_run()
    with pytest.raises(ValueError, match="results_url must be a file:// URL"):
        await sandbox_with(
            tmp_path, results_url="gs://b/r", results_upload_url="file:///x"
        )._post_run()
    with pytest.raises(RuntimeError, match="Results directory does not exist"):
        await sandbox_with(
            tmp_path, results_url=results.as_uri(), results_upload_url="file:///x"
        )._post_run()
    results.mkdir()
    (results / "result.json").write_text("{}")
    dest = tmp_path / "up" / "results.tar.gz"
    await sandbox_with(
        tmp_path, results_url=results.as_uri(), results_upload_url=dest.as_uri()
    )._post_run()
    with tarfile.open(dest) as tar:
        assert tar.getnames() == ["result.json"]

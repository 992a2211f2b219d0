"""SandboxInvoker and its mixins against real archives, a real HTTP server and real processes.

The environment archives are real pixi-pack layouts built offline by the test kit
(the pixi-pack binary itself cannot run here); ``http://`` is a real server on
127.0.0.1 that can fail on purpose.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wt_invokers import EnvironmentDigestError, PixiUnpackError, TransferError
from wt_invokers.mixins import TransferSettings, UnsafeResultsError
from wt_invokers.sandbox import SandboxInvoker
from wt_testkit.workflows import SAMPLE_WORKFLOW, build_pixi_pack_archive, workflow_config

FAST = TransferSettings(max_attempts=4, retry_wait_initial=0.01, retry_wait_max=0.02, timeout=10)


@dataclass
class Server:
    """A real HTTP server: GET serves ``files``, PUT records ``uploads``; ``fail`` scripts
    the status of the next requests (e.g. ``[503, 503]``)."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, tuple[dict[str, str], bytes]] = field(default_factory=dict)
    fail: list[int] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _failed(self) -> bool:
            self.server_requests.append(f"{self.command} {self.path}")
            if state.fail:
                self.send_response(state.fail.pop(0))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            return False

        @property
        def server_requests(self) -> list[str]:
            return state.requests

        def do_GET(self) -> None:
            if self._failed():
                return
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{state.url}/env.tar")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self._failed():
                return
            state.uploads[self.path] = (dict(self.headers.items()), body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pixi_pack_archive(tmp_path_factory.mktemp("pack") / "environment.tar")


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def sandbox(tmp_path: Path) -> SandboxInvoker:
    return SandboxInvoker(
        SAMPLE_WORKFLOW,
        work_dir=str(tmp_path / "work"),
        environment_cache_dir=str(tmp_path / "cache"),
        transfer=FAST,
        kill_grace_seconds=0.5,
    )


def results_dir(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    d.mkdir(exist_ok=True)
    return d


async def run(inv: SandboxInvoker, tmp_path: Path, **options: Any) -> None:
    config = options.pop("config", workflow_config(result_file="out.txt", result_text="done"))
    await inv.run("run-1", config, results_dir(tmp_path).as_uri(), "sequential", False, **options)


def members(archive_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as tar:
        return {
            m.name: (tar.extractfile(m) or io.BytesIO()).read()
            for m in tar.getmembers()
            if m.isfile()
        }


# -- the whole run ----------------------------------------------------------------------


async def test_http_archive_in_workflow_run_results_put_out_with_retries(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    server.files["/env.tar"] = archive.read_bytes()
    server.fail = [503, 503]  # the download is retried through two server errors
    inv = sandbox(tmp_path)
    await run(
        inv,
        tmp_path,
        config=workflow_config(result_file="out.txt", result_text="done", exit_code=3),
        environment_tar_url=f"{server.url}/env.tar",
        results_upload_url=f"{server.url}/upload/run-1.tar.gz?sig=abc",
    )
    assert inv.is_running and Path(inv.run_state["prefix"]).is_dir()
    assert await inv.wait(timeout=30) == 3  # a failed workflow's results are still uploaded
    assert server.requests[:3] == ["GET /env.tar"] * 3
    headers, body = server.uploads["/upload/run-1.tar.gz?sig=abc"]
    assert headers.get("Content-Length") == str(len(body))
    assert "Transfer-Encoding" not in headers
    assert headers["Content-Type"] == "application/gzip"
    assert members(body) == {"out.txt": b"done\n"}
    assert not (tmp_path / "work" / "environment.tar").exists()
    assert not inv.is_running


async def test_a_pinned_environment_in_the_cache_is_not_downloaded_again(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    server.files["/env.tar"] = archive.read_bytes()
    options = {
        "environment_tar_url": f"{server.url}/redirect",  # followed, as upstream v0.4.1
        "environment_tar_digest": digest_of(archive),
        "results_upload_url": (tmp_path / "out" / "r.tar.gz").as_uri(),
    }
    inv = sandbox(tmp_path)
    await run(inv, tmp_path, **options)
    assert await inv.wait(timeout=30) == 0
    fetched = len(server.requests)
    assert fetched == 2
    await run(inv, tmp_path, **options)
    assert await inv.wait(timeout=30) == 0
    assert len(server.requests) == fetched  # the second run started from the cache
    assert members((tmp_path / "out" / "r.tar.gz").read_bytes()) == {"out.txt": b"done\n"}


# -- integrity --------------------------------------------------------------------------


async def test_an_archive_other_than_the_pinned_one_is_refused_before_unpacking(
    archive: Path, tmp_path: Path
) -> None:
    inv = sandbox(tmp_path)
    with pytest.raises(EnvironmentDigestError, match="integrity check failed"):
        await run(
            inv,
            tmp_path,
            environment_tar_url=archive.as_uri(),
            environment_tar_digest="sha256:" + "0" * 64,
            results_upload_url=(tmp_path / "r.tar.gz").as_uri(),
        )
    assert not inv.is_running
    assert not list((tmp_path / "cache").glob("*/env"))


async def test_a_package_whose_sha256_differs_from_the_metadata_is_never_installed(
    tmp_path: Path,
) -> None:
    bad = build_pixi_pack_archive(tmp_path / "bad.tar", corrupt_package=True)
    inv = sandbox(tmp_path)
    with pytest.raises(EnvironmentDigestError, match=r"does not match repodata\.json"):
        await run(inv, tmp_path, environment_tar_url=bad.as_uri(), results_upload_url="file:///x")
    assert not list((tmp_path / "cache").glob("*/env"))


async def test_an_archive_for_another_platform_or_escaping_its_directory_is_refused(
    tmp_path: Path,
) -> None:
    other = build_pixi_pack_archive(tmp_path / "win.tar", platform="win-64")
    with pytest.raises(PixiUnpackError, match="different platform"):
        await run(sandbox(tmp_path), tmp_path, environment_tar_url=other.as_uri())
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(PixiUnpackError, match="cannot extract"):
        await run(sandbox(tmp_path), tmp_path, environment_tar_url=evil.as_uri())
    assert not (tmp_path / "cache" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()


# -- results safety and upload failures -------------------------------------------------


@pytest.mark.parametrize("plant", ["symlink_out", "hardlink", "setuid", "fifo"])
async def test_results_that_must_not_leave_the_sandbox_abort_the_upload(
    plant: str, archive: Path, tmp_path: Path
) -> None:
    results = results_dir(tmp_path)
    (results / "ok.txt").write_text("fine")
    if plant == "symlink_out":
        (results / "link").symlink_to("/etc/passwd")
    elif plant == "hardlink":
        os.link(results / "ok.txt", results / "again.txt")
    elif plant == "setuid":
        (results / "suid").write_text("x")
        (results / "suid").chmod(0o755 | stat.S_ISUID)
    else:
        os.mkfifo(results / "pipe")
    dest = tmp_path / "out" / "r.tar.gz"
    inv = sandbox(tmp_path)
    await run(
        inv,
        tmp_path,
        config=workflow_config(exit_code=0),
        environment_tar_url=archive.as_uri(),
        results_upload_url=dest.as_uri(),
    )
    with pytest.raises(UnsafeResultsError):
        await inv.wait(timeout=30)
    assert not dest.exists()
    assert not inv.is_running


async def test_a_symlink_inside_the_results_is_archived(archive: Path, tmp_path: Path) -> None:
    results = results_dir(tmp_path)
    (results / "data.txt").write_text("x")
    (results / "latest").symlink_to("data.txt")
    dest = tmp_path / "r.tar.gz"
    inv = sandbox(tmp_path)
    await run(inv, tmp_path, environment_tar_url=archive.as_uri(), results_upload_url=dest.as_uri())
    assert await inv.wait(timeout=30) == 0
    with tarfile.open(dest) as tar:
        assert tar.getmember("latest").linkname == "data.txt"


async def test_upload_retries_server_errors_and_gives_up_on_a_refusal(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    inv = sandbox(tmp_path)
    await run(
        inv,
        tmp_path,
        environment_tar_url=archive.as_uri(),
        results_upload_url=f"{server.url}/u1",
    )
    server.fail = [500, 502]
    assert await inv.wait(timeout=30) == 0
    assert "/u1" in server.uploads and len(server.requests) == 3

    await run(
        inv,
        tmp_path,
        environment_tar_url=archive.as_uri(),
        results_upload_url=f"{server.url}/u2",
    )
    server.fail = [403]
    with pytest.raises(TransferError, match="403") as info:
        await inv.wait(timeout=30)
    assert info.value.status == 403 and len(server.requests) == 4  # no retry


async def test_missing_urls_are_reported_as_upstream_does(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="environment_tar_url is required"):
        await run(sandbox(tmp_path), tmp_path)
    with pytest.raises(ValueError, match="Unsupported scheme for environment_tar_url: s3"):
        await run(sandbox(tmp_path), tmp_path, environment_tar_url="s3://b/env.tar")
    with pytest.raises(ValueError, match="sha256:<64 hex chars>"):
        await run(
            sandbox(tmp_path),
            tmp_path,
            environment_tar_url="file:///x",
            environment_tar_digest="md5:abc",
        )


# -- the console entry point ------------------------------------------------------------


def sandbox_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "wt-invokers.sandbox"
    env = {**os.environ, "WT_INVOKERS__SANDBOX_INVOKER__WORK_DIR": str(cwd / "work")}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_the_console_entry_point_runs_a_workflow_and_exits_with_its_code(
    archive: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    dest = tmp_path / "out.tar.gz"
    common = [
        "--matchspec", SAMPLE_WORKFLOW, "--workflow-run-id", "cli-1",
        "--environment-tar-url", archive.as_uri(),
        "--environment-tar-digest", digest_of(archive),
        "--results-url", results.as_uri(),
        # YAML is accepted, as upstream's yaml_to_json accepts it (the sample reads block YAML).
        "--config-json", workflow_config(result_file="r.txt", result_text="cli", exit_code=4),
        "--execution-mode", "sequential", "--no-mock-io",
    ]  # fmt: skip
    proc = sandbox_cli(*common, "--results-upload-url", dest.as_uri(), cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert members(dest.read_bytes()) == {"r.txt": b"cli\n"}

    skipped = sandbox_cli(*common, "--dangerously-skip-results-archive-upload", cwd=tmp_path)
    assert skipped.returncode == 4, skipped.stderr

    both = sandbox_cli(
        *common, "--dangerously-skip-results-archive-upload", "--results-upload-url", "file:///x",
        cwd=tmp_path,
    )  # fmt: skip
    assert both.returncode == 2 and "mutually exclusive" in both.stderr
    neither = sandbox_cli(*common, cwd=tmp_path)
    assert neither.returncode == 2 and "--results-upload-url is required" in neither.stderr


# -- a Local run from an archive (what the operator's spec.environment uses) -------------


async def test_a_local_run_from_a_pinned_archive_needs_no_workspace(
    server: Server, archive: Path, tmp_path: Path
) -> None:
    from wt_invokers.invocation import Invocation
    from wt_invokers.sandbox import LocalArchiveInvoker
    from wt_testkit.workflows import read_echo_file

    server.files["/env.tar"] = archive.read_bytes()
    work = tmp_path / "no workspace here"
    work.mkdir()

    def make(digest: str) -> LocalArchiveInvoker:
        return LocalArchiveInvoker(
            SAMPLE_WORKFLOW,
            cwd=work,
            environment_tar_url=f"{server.url}/env.tar",
            environment_tar_digest=digest,
            environment_cache_dir=str(tmp_path / "cache"),
            transfer=FAST,
        )

    inv = make(digest_of(archive))
    echo = tmp_path / "echo"
    config = workflow_config(echo_file=echo, exit_code=5)
    await inv.start(Invocation("r-1", config, results_dir(tmp_path).as_uri(), "local", False))
    assert await inv.wait(timeout=30) == 5
    seen = read_echo_file(echo)
    assert seen.cwd == str(work)
    assert seen.argv[:2] == ["run", "--config-file"]  # no archive keywords reach the workflow
    assert not list(work.glob("environment-*.tar"))  # the download is removed once unpacked

    wrong = make("sha256:" + "1" * 64)
    with pytest.raises(EnvironmentDigestError):
        await wrong.start(Invocation("r-2", config, results_dir(tmp_path).as_uri(), "local", False))
    assert not wrong.is_running
    with pytest.raises(ValueError, match="sha256:<64 hex chars>"):
        make("latest")

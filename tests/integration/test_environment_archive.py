"""spec.environment: Local runs from a digest-pinned pixi-pack archive, and signal deaths.

The archive is a real pixi-pack layout built offline by the test kit, served over
http:// by a real server on 127.0.0.1; the operator is the real one against the
real API server.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import batch_spec, local_spec
from wt_envtest.runs import Runs
from wt_testkit.workflows import build_pixi_pack_archive, read_echo_file, wait_for_path

pytestmark = pytest.mark.timeout(180)

ARCHIVED_VERSION = "9.9.0"  # the workspace holds 1.2.0: the echo says which one ran


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(URL, digest) of an archive holding the sample workflow at ARCHIVED_VERSION."""
    root = tmp_path_factory.mktemp("served")
    archive = build_pixi_pack_archive(
        root / "environment.tar", [f"wt-sample-workflow={ARCHIVED_VERSION}"]
    )
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/environment.tar", digest
    httpd.shutdown()
    httpd.server_close()


async def test_a_local_run_starts_from_the_pinned_archive(
    start_operator: Any, runs: Runs, served: tuple[str, str], tmp_path: Path
) -> None:
    url, digest = served
    start_operator()
    echo = tmp_path / "echo"
    await runs.create(
        "from-archive",
        local_spec(
            {"echo_file": str(echo), "exit_code": 0},
            environment={"archiveUrl": url, "archiveDigest": digest},
        ),
    )
    obj = await runs.wait_for("from-archive", ["Succeeded", "Failed"])
    assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
    seen = read_echo_file(await wait_for_path(echo))
    assert seen.version == ARCHIVED_VERSION


async def test_an_archive_that_is_not_the_pinned_one_fails_the_run_once(
    start_operator: Any, runs: Runs, served: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = served
    start_operator()
    echo = tmp_path / "echo"
    await runs.create(
        "tampered",
        local_spec(
            {"echo_file": str(echo)},
            environment={"archiveUrl": url, "archiveDigest": "sha256:" + "0" * 64},
        ),
    )
    obj = await runs.wait_for("tampered", ["Failed"])
    assert obj["status"]["reason"] == "NotInstalled"
    assert "integrity check failed" in obj["status"]["message"]
    assert not echo.exists()


async def test_the_crd_refuses_an_unpinned_archive_and_one_on_cloud_batch(
    runs: Runs, crds: Any, served: tuple[str, str]
) -> None:
    url, digest = served
    for name, spec in {
        "unpinned": local_spec(environment={"archiveUrl": url}),
        "latest": local_spec(environment={"archiveUrl": url, "archiveDigest": "latest"}),
        "file-url": local_spec(environment={"archiveUrl": "file:///etc", "archiveDigest": digest}),
        "on-batch": batch_spec(environment={"archiveUrl": url, "archiveDigest": digest}),
    }.items():
        with pytest.raises(ApiException) as err:
            await runs.create(name, spec)
        assert err.value.status == 422, name


async def test_a_workflow_killed_by_a_signal_says_so(start_operator: Any, runs: Runs) -> None:
    start_operator()
    await runs.create("killed", local_spec({"kill_self": "TERM"}))
    obj = await runs.wait_for("killed", ["Failed"])
    assert "killed by signal 15 (SIGTERM)" in obj["status"]["message"]
    assert obj["status"]["exitCode"] == 143 and obj["status"]["result"] == "143"

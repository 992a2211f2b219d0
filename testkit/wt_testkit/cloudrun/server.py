"""The Cloud Run stand-in served over real gRPC on loopback, from a thread of its own.

Exists so the code under test uses the *real* ``google-cloud-run`` clients over
real gRPC (``google.cloud.run.v2.Jobs`` and ``.Executions`` on one port). What
the RPCs do is :class:`~wt_testkit.cloudrun.executions.ExecutionStore`; what goes
wrong on purpose is the Batch stand-in's
:class:`~wt_testkit.batch.faults.FaultInjection` (same ``fail_next``/``deny``/
``lose_reply_after_commit``, by RPC name); the serving is
:class:`~wt_testkit._grpc_server.LoopbackGrpcServer`, shared with the Batch stand-in.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from google.cloud import run_v2

from wt_testkit._grpc_server import LoopbackGrpcServer
from wt_testkit.batch.faults import FaultInjection
from wt_testkit.cloudrun.executions import METHODS, ExecutionStore

__all__ = ["InProcessCloudRunServer"]


class InProcessCloudRunServer(ExecutionStore, FaultInjection, LoopbackGrpcServer):
    """A real gRPC Cloud Run Jobs + Executions endpoint on loopback.

    In-process use::

        with InProcessCloudRunServer(lifecycle=[("RUNNING", 0.1), ("SUCCEEDED", 0.3)]) as srv:
            os.environ["CLOUD_RUN_EMULATOR_HOST"] = srv.address
            srv.deploy_job("projects/p/locations/us-central1/jobs/wt-sandbox")
            srv.fail_next("RunJob", "RESOURCE_EXHAUSTED")

    Args:
        host, port: where to listen (port 0: a free one, read back from :attr:`address`).
        latency: seconds every call waits before it is handled.
        lifecycle: states new executions pass through (see :class:`ExecutionStore`).
    """

    _services = {
        "google.cloud.run.v2.Jobs": ("GetJob", "RunJob"),
        "google.cloud.run.v2.Executions": ("GetExecution", "ListExecutions", "CancelExecution"),
    }
    _requests = {method: getattr(run_v2, f"{method}Request").pb() for method in METHODS}

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        lifecycle: Sequence[tuple[str, float]] = (),
    ) -> None:
        ExecutionStore.__init__(self, lifecycle)
        FaultInjection.__init__(self, METHODS)
        LoopbackGrpcServer.__init__(self, host=host, port=port, latency=latency)

    @property
    def address(self) -> str:
        """``host:port`` (what ``CLOUD_RUN_EMULATOR_HOST`` takes)."""
        if self._bound_port is None:
            raise RuntimeError("the server is not started")
        return f"{self.host}:{self._bound_port}"

    def start(self) -> InProcessCloudRunServer:
        """Bind and serve in a background thread; returns once the port accepts calls."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="cloud-run-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(30) or self._startup_error is not None:
            raise RuntimeError("the Cloud Run server did not start") from self._startup_error
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving; in-flight calls get ``grace`` seconds."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(grace + 10)
        self._thread = None

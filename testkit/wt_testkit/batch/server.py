"""The Batch stand-in served over real gRPC on loopback, from a thread of its own.

Exists so the code under test can use the *real* ``google-cloud-batch`` client over
real gRPC, from sync or async tests alike: the server runs its own event loop in a
background thread, so the client can live on the test's loop. What the RPCs do is
:class:`~wt_testkit.batch.jobs.JobStore`; what goes wrong on purpose is
:class:`~wt_testkit.batch.faults.FaultInjection`; this module only wires them to
``grpc.aio`` and starts and stops the listener (the serving itself is
:class:`~wt_testkit._grpc_server.LoopbackGrpcServer`, shared with the Cloud Run stand-in).
"""

from __future__ import annotations

import contextlib
import threading

from google.cloud import batch_v1

from wt_testkit._grpc_server import LoopbackGrpcServer
from wt_testkit.batch.control import ControlEndpoint
from wt_testkit.batch.faults import METHODS, SERVICE, FaultInjection
from wt_testkit.batch.jobs import JobStore
from wt_testkit.batch.lifecycle import Lifecycle

__all__ = ["InProcessBatchServer"]


class InProcessBatchServer(JobStore, FaultInjection, LoopbackGrpcServer):
    """A real gRPC ``BatchService`` on loopback, with state control and fault injection.

    Job control and observation (``set_job_state``, ``jobs``, ``created_jobs``, …)
    come from :class:`JobStore`, failures on demand (``fail_next``, ``deny``, …)
    from :class:`FaultInjection`.

    Args:
        host: interface to bind (loopback by default: nothing outside the machine sees it).
        port: TCP port; 0 picks a free one (read it back from :attr:`address`).
        latency: seconds every call waits before it is handled (settable later).
        lifecycle: states new jobs pass through automatically (see :mod:`wt_testkit.batch`).
    """

    _services = {SERVICE: METHODS}
    _requests = {method: getattr(batch_v1, f"{method}Request").pb() for method in METHODS}

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        lifecycle: Lifecycle = (),
    ) -> None:
        JobStore.__init__(self, lifecycle)
        FaultInjection.__init__(self)
        LoopbackGrpcServer.__init__(self, host=host, port=port, latency=latency)
        self._control: ControlEndpoint | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC endpoint (what ``BATCH_EMULATOR_HOST`` takes)."""
        return f"{self.host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        if self._bound_port is None:
            raise RuntimeError("the server is not started")
        return self._bound_port

    def start(self) -> InProcessBatchServer:
        """Bind and serve in a background thread; returns once the port accepts calls."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="batch-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the Batch server did not start within 30 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("the Batch server failed to start") from self._startup_error
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and the control endpoint."""
        if self._control is not None:
            self._control.stop()
            self._control = None
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            self._grace = grace
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(grace + 10)
        self._thread = None
        self._bound_port = None if self._port == 0 else self._bound_port

    def start_control(self, port: int = 0) -> str:
        """Serve the JSON control endpoint (see :mod:`wt_testkit.batch`); returns its URL."""
        if self._control is not None:
            raise RuntimeError("the control endpoint is already running")
        self._control = ControlEndpoint(self, self.host, port)
        return self._control.url

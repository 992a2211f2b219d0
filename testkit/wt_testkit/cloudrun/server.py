"""The Cloud Run stand-in served over real gRPC on loopback, from a thread of its own.

Exists so the code under test uses the *real* ``google-cloud-run`` clients over
real gRPC (``google.cloud.run.v2.Jobs`` and ``.Executions`` on one port). What
the RPCs do is :class:`~wt_testkit.cloudrun.executions.ExecutionStore`; what goes
wrong on purpose is the Batch stand-in's
:class:`~wt_testkit.batch.faults.FaultInjection` (same ``fail_next``/``deny``/
``lose_reply_after_commit``, by RPC name).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
from google.cloud import run_v2

from wt_testkit.batch.faults import FaultInjection, RpcError
from wt_testkit.cloudrun.executions import METHODS, ExecutionStore

__all__ = ["InProcessCloudRunServer"]

_SERVICES = {
    "google.cloud.run.v2.Jobs": ("GetJob", "RunJob"),
    "google.cloud.run.v2.Executions": ("GetExecution", "ListExecutions", "CancelExecution"),
}
_REQUESTS: dict[str, Any] = {method: getattr(run_v2, f"{method}Request").pb() for method in METHODS}


class InProcessCloudRunServer(ExecutionStore, FaultInjection):
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
        self.host = host
        self._port = port
        self.latency = latency
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._bound_port: int | None = None
        self._startup_error: BaseException | None = None

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

    def __enter__(self) -> InProcessCloudRunServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:  # surfaced to start() instead of dying silently
            self._startup_error = exc
            ready.set()
        finally:
            loop.close()
            self._loop = None

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(
                    service, {method: self._handler(method) for method in methods}
                )
                for service, methods in _SERVICES.items()
            )
        )
        port = server.add_insecure_port(f"{self.host}:{self._port}")
        if port == 0:
            raise RuntimeError(f"cannot bind {self.host}:{self._port}")
        await server.start()
        self._bound_port = port
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await server.stop(0.5)

    def _handler(self, method: str) -> Any:
        async def behaviour(request: Any, context: Any) -> Any:
            self.count_call(method)
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            error, lost = self.take_fault(method)
            response = None
            if error is None:
                try:
                    response = self.handle(method, request)
                except RpcError as exc:
                    error = exc
            if error is not None:
                await context.abort(error.code, error.message)
            if lost is not None:
                await context.abort(lost, f"{method} reply lost after commit (injected)")
            return response

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=_REQUESTS[method].FromString,
            response_serializer=lambda message: bytes(message.SerializeToString()),
        )

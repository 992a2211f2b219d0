"""The Batch stand-in served over real gRPC on loopback, from a thread of its own.

Exists so the code under test can use the *real* ``google-cloud-batch`` client over
real gRPC, from sync or async tests alike: the server runs its own event loop in a
background thread, so the client can live on the test's loop. What the RPCs do is
:class:`~wt_testkit.batch.jobs.JobStore`; what goes wrong on purpose is
:class:`~wt_testkit.batch.faults.FaultInjection`; this module only wires them to
``grpc.aio`` (plus latency) and starts and stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any

import grpc
from google.cloud import batch_v1

from wt_testkit.batch.control import ControlEndpoint
from wt_testkit.batch.faults import METHODS, SERVICE, FaultInjection, RpcError
from wt_testkit.batch.jobs import JobStore
from wt_testkit.batch.lifecycle import Lifecycle

__all__ = ["InProcessBatchServer"]

_REQUESTS: dict[str, Any] = {
    method: getattr(batch_v1, f"{method}Request").pb() for method in METHODS
}
"""Raw request proto class per RPC (the store works on raw protos: cheaper than proto-plus)."""


class InProcessBatchServer(JobStore, FaultInjection):
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
        self.host = host
        self._port = port
        self.latency = latency
        """Seconds each call sleeps before it is handled (never blocks other calls)."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._bound_port: int | None = None
        self._startup_error: BaseException | None = None
        self._grace = 0.5
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

    def __enter__(self) -> InProcessBatchServer:
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
        server.add_generic_rpc_handlers((self._generic_handler(),))
        port = server.add_insecure_port(f"{self.host}:{self._port}")
        if port == 0:
            raise RuntimeError(f"cannot bind {self.host}:{self._port}")
        await server.start()
        self._bound_port = port
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await server.stop(self._grace)

    def _generic_handler(self) -> Any:
        def handler(method: str) -> Any:
            async def behaviour(request: Any, context: Any) -> Any:
                return await self._dispatch(method, request, context)

            return grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=_REQUESTS[method].FromString,
                response_serializer=_serialize,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE, {method: handler(method) for method in METHODS}
        )

    async def _dispatch(self, method: str, request: Any, context: Any) -> Any:
        self.count_call(method)
        latency = self.latency
        if latency > 0:
            await asyncio.sleep(latency)
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


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())

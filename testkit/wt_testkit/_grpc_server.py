"""Serving a stand-in over real gRPC on loopback, from a thread and event loop of its own.

Exists because the Batch and the Cloud Run stand-ins serve the same way: a
``grpc.aio`` server on a background thread's loop (so the client under test can
live on the test's loop), every call counted, delayed by ``latency``, then failed
on purpose or answered by the store. What differs — the services and their
request types, how start and stop report — stays in each stand-in's ``server``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import grpc

from wt_testkit.batch.faults import RpcError

__all__ = ["LoopbackGrpcServer"]


class LoopbackGrpcServer:
    """The serving half of a stand-in; the store and :class:`FaultInjection` are mixed in beside it.

    A subclass names :attr:`_services` and :attr:`_requests` and writes ``start``
    (a thread running :meth:`_serve`) and ``stop`` (setting :attr:`_stopping`).
    """

    _services: ClassVar[Mapping[str, Sequence[str]]]
    """gRPC service name → the RPCs served under it."""
    _requests: ClassVar[Mapping[str, Any]]
    """RPC → its raw request proto class (stores work on raw protos: cheaper than proto-plus)."""

    if TYPE_CHECKING:  # provided by the store and FaultInjection beside this class

        def count_call(self, method: str) -> None: ...
        def take_fault(self, method: str) -> tuple[RpcError | None, grpc.StatusCode | None]: ...
        def handle(self, method: str, request: Any) -> Any: ...
        def start(self) -> LoopbackGrpcServer: ...
        def stop(self, grace: float = 0.5) -> None: ...

    def __init__(self, *, host: str, port: int, latency: float) -> None:
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

    def __enter__(self) -> Self:
        self.start()  # returns self
        return self

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
                    service, {method: self._method_handler(method) for method in methods}
                )
                for service, methods in self._services.items()
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
            await server.stop(self._grace)

    def _method_handler(self, method: str) -> Any:
        async def behaviour(request: Any, context: Any) -> Any:
            return await self._dispatch(method, request, context)

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=self._requests[method].FromString,
            response_serializer=_serialize,
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

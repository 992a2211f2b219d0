"""Fault injection for the Batch stand-in: failed, refused and lost-reply RPCs.

Exists because the code under test must survive what the real service does on a
bad day — ``UNAVAILABLE`` bursts, a permission taken away, a reply lost after the
job was stored — and a test has to be able to order exactly that, by RPC name.
"""

from __future__ import annotations

import collections
import threading

import grpc

__all__ = ["METHODS", "SERVICE", "FaultInjection", "RpcError"]

SERVICE = "google.cloud.batch.v1.BatchService"
"""The fully qualified gRPC service name the real client calls."""

METHODS = ("CreateJob", "GetJob", "ListJobs", "DeleteJob", "CancelJob")
"""The RPCs the stand-in implements (fault injection accepts these names)."""


class RpcError(Exception):
    """A gRPC status an RPC answers with instead of a reply (the server aborts with it)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_code(code: grpc.StatusCode | str) -> grpc.StatusCode:
    """``grpc.StatusCode.X`` or its name ``"X"`` (case-insensitive) as a status code."""
    if isinstance(code, grpc.StatusCode):
        return code
    try:
        return grpc.StatusCode[str(code).upper()]
    except KeyError:
        raise ValueError(f"unknown gRPC status code {code!r}") from None


class FaultInjection:
    """The failures a test has ordered; thread-safe (RPCs take them from the server's loop).

    Args:
        methods: the RPC names faults may be ordered for (another stand-in passes its own).
    """

    def __init__(self, methods: tuple[str, ...] = METHODS) -> None:
        self._fault_methods = methods
        self._faults_lock = threading.Lock()
        self._fail_next: dict[str, collections.deque[RpcError]] = collections.defaultdict(
            collections.deque
        )
        self._lose_reply: dict[str, collections.deque[grpc.StatusCode]] = collections.defaultdict(
            collections.deque
        )
        self._deny: dict[str | None, RpcError] = {}

    def fail_next(
        self,
        method: str,
        code: grpc.StatusCode | str,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` with ``code``, before doing anything."""
        self._check_method(method)
        status = status_code(code)
        error = RpcError(status, message or f"{method} failed with {status.name} (injected)")
        with self._faults_lock:
            self._fail_next[method].extend([error] * times)

    def lose_reply_after_commit(
        self,
        method: str = "CreateJob",
        times: int = 1,
        code: grpc.StatusCode | str = grpc.StatusCode.UNAVAILABLE,
    ) -> None:
        """Do the next ``times`` calls of ``method``, then answer ``code`` instead of the result.

        Models a reply lost on the way back: the server stored the job, the
        client saw an error and cannot know whether it was stored.
        """
        self._check_method(method)
        status = status_code(code)
        with self._faults_lock:
            self._lose_reply[method].extend([status] * times)

    def deny(
        self,
        code: grpc.StatusCode | str = grpc.StatusCode.PERMISSION_DENIED,
        method: str | None = None,
        message: str | None = None,
    ) -> None:
        """Refuse every call of ``method`` (all methods when None) until cleared."""
        self._check_method(method)
        status = status_code(code)
        text = message or f"{method or 'call'} denied with {status.name} (injected)"
        with self._faults_lock:
            self._deny[method] = RpcError(status, text)

    def allow(self, method: str | None = None) -> None:
        """Lift a :meth:`deny` for ``method`` (None: the all-methods denial)."""
        with self._faults_lock:
            self._deny.pop(method, None)

    def reset_faults(self) -> None:
        """Clear every injected failure and denial (``latency`` stays as set)."""
        with self._faults_lock:
            self._fail_next.clear()
            self._lose_reply.clear()
            self._deny.clear()

    def _check_method(self, method: str | None) -> None:
        if method is not None and method not in self._fault_methods:
            known = ", ".join(self._fault_methods)
            raise ValueError(f"unknown method {method!r}; one of {known}")

    def take_fault(self, method: str) -> tuple[RpcError | None, grpc.StatusCode | None]:
        """For one arriving call: the error to answer at once, or the code of a lost reply."""
        with self._faults_lock:
            denied = self._deny.get(method) or self._deny.get(None)
            if denied is not None:
                return denied, None
            queue = self._fail_next.get(method)
            if queue:
                return queue.popleft(), None
            lost = self._lose_reply.get(method)
            return None, (lost.popleft() if lost else None)

"""Plain HTTPS calls to an API server as admin, with no client library in between.

Exists because the harness must work before anything else does: while the API
server is starting, while a CRD's storage initializes, and from sync fixtures
that have no event loop. ``urllib`` with one cached TLS context is enough, and
answers with the server's own status codes and bodies.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["ApiError", "RestClient"]


class ApiError(RuntimeError):
    """The API server answered with an HTTP error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:2000]}")
        self.status = status
        self.body = body


@dataclasses.dataclass
class RestClient:
    """Where the API server is and how to authenticate to it; sync, thread-safe calls."""

    server: str = ""
    """``https://127.0.0.1:<port>``."""
    token: str | None = None
    """The admin bearer token (None for an external cluster using other credentials)."""
    ca_file: Path | None = None
    """CA bundle that verifies the server's certificate (kube-apiserver's self-generated one)."""
    _client_cert: tuple[str, str] | None = None
    _verify: bool = True
    _ctx: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once: loading the CA per request costs more than the request itself.
        # (Not cached until the CA file exists: kube-apiserver writes it at startup.)
        if self._ctx is None:
            self._ctx = self._new_ssl_context()
        return self._ctx

    def _new_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if not self._verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self._client_cert is not None:
            ctx.load_cert_chain(*self._client_cert)
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        """One HTTP call as admin; raises :class:`ApiError` on a status >= 400."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        # 429 "storage is (re)initializing" answers requests for a CRD created moments
        # ago (and during an API server restart); the server says when to come back.
        for attempt in range(20):
            try:
                with urllib.request.urlopen(
                    req, timeout=timeout, context=self._ssl_context()
                ) as rsp:
                    return rsp.status, rsp.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 429 and attempt < 19:
                    time.sleep(min(float(exc.headers.get("Retry-After") or 1), 2.0))
                    continue
                raise ApiError(
                    method, path, exc.code, exc.read().decode(errors="replace")
                ) from None
        raise AssertionError("unreachable")

    def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """:meth:`request`, decoding the JSON answer."""
        _, raw = self.request(method, path, body, **kwargs)
        return json.loads(raw) if raw else None

    def metrics_text(self) -> str:
        """kube-apiserver's Prometheus metrics (GET /metrics as admin)."""
        _, raw = self.request("GET", "/metrics", accept="text/plain")
        return raw.decode()

    def ready(self) -> bool:
        """Whether ``GET /readyz`` answers 200 right now (False while it cannot connect)."""
        if self.ca_file is not None and not self.ca_file.exists():
            return False
        try:
            status, _ = self.request("GET", "/readyz", timeout=2)
        except (OSError, ApiError, ssl.SSLError):
            return False
        return status == 200

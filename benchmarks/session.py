"""Everything a benchmark drives: the control plane, an API client, the Batch stand-in, operators.

Exists so the CLI (``python -m benchmarks``), the profiler and the smoke test in
``make test`` run the same benchmark functions against the same kind of setup; the
CLI starts its own control plane, the smoke test hands in the session's. Operators
run as the chart runs them by default (no ``--verbose``), one process per namespace,
Local runs with the ``prefix`` launcher (the real conda environment, no pixi), and
Cloud Batch is the in-process gRPC stand-in with 20 ms per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from wt_envtest import ControlPlane, OperatorProcess, apply_crds, start_control_plane
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import make_workspace

ROOT = Path(__file__).resolve().parent.parent
ENVTEST = ROOT / "hack" / "envtest.sh"

FLOOR = "benchmarks.kopf_floor"
"""The module of the bare kopf operator (the floor rows of the table)."""

BATCH_LATENCY = 0.02
"""Seconds each stand-in Batch call takes (a realistic round trip to a region)."""


class BenchSession:
    """A control plane plus the parts benchmarks share; operators stopped on ``close``."""

    def __init__(
        self,
        plane: ControlPlane,
        api: client.ApiClient,
        workspace: Path,
        batch: InProcessBatchServer,
        tmp: Path,
        prefix: str = "",
        operator_env: Mapping[str, str] | None = None,
    ) -> None:
        self.plane = plane
        self.api = api
        self.workspace = workspace
        self.batch = batch
        self.tmp = tmp
        self.prefix = prefix
        """Put before every namespace name (a shared control plane has other tests' too)."""
        self.operator_env = dict(operator_env or {})
        """Settings every operator of the session gets (e.g. PYTHONPATH of another checkout)."""
        self.operators: list[OperatorProcess] = []
        self.namespaces: list[str] = []

    def metrics_text(self) -> str:
        return self.plane.metrics_text()

    def namespace(self, name: str) -> str:
        """Create the namespace ``prefix + name``; its full name."""
        full = f"{self.prefix}{name}"
        self.plane.create_namespace(full)
        self.namespaces.append(full)
        return full

    def operator_process(
        self, namespace: str, module: str = "wt_operator", **env: str
    ) -> OperatorProcess:
        """An operator for ``namespace`` (not started); ``env`` are its settings.

        ``module``: :data:`FLOOR` for the bare kopf operator of :mod:`benchmarks.kopf_floor`.
        """
        proc = OperatorProcess(
            module=module,
            kubeconfig=self.plane.kubeconfig,
            namespaces=[namespace],
            workspace=self.workspace,
            log_path=self.tmp / f"operator-{namespace}-{len(self.operators)}.log",
            verbose=False,
            env={
                "WT_OPERATOR_LOCAL_LAUNCHER": "prefix",
                "BATCH_EMULATOR_HOST": self.batch.address,
                # Tracked Batch jobs are polled every 30 s, as a real deployment might.
                "WT_OPERATOR_BATCH_POLL_INTERVAL": "30",
                **self.operator_env,
                # The floor is this checkout's, whichever operator the session measures.
                **({"PYTHONPATH": str(ROOT)} if module == FLOOR else {}),
                **env,
            },
        )
        self.operators.append(proc)
        return proc

    async def operator(
        self, namespace: str, module: str = "wt_operator", **env: str
    ) -> OperatorProcess:
        """A started operator for ``namespace``."""
        return await asyncio.to_thread(self.operator_process(namespace, module, **env).start)

    async def stop(self, proc: OperatorProcess) -> None:
        await asyncio.to_thread(proc.stop)

    @contextlib.asynccontextmanager
    async def running(
        self, namespace: str, module: str = "wt_operator", **env: str
    ) -> AsyncIterator[OperatorProcess]:
        """An operator for ``namespace`` during the block, stopped after it however it ends."""
        proc = await self.operator(namespace, module, **env)
        try:
            yield proc
        finally:
            await self.stop(proc)

    async def close(self) -> None:
        for proc in self.operators:
            await self.stop(proc)


def operator_pid(proc: OperatorProcess) -> int:
    if proc.proc is None:
        raise RuntimeError("operator not started")
    return proc.proc.pid


async def api_client(plane: ControlPlane) -> client.ApiClient:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=cfg)
    # Bursts create 50 runs at a time and keep a watch open beside them.
    cfg.connection_pool_maxsize = 64
    return client.ApiClient(cfg)


@contextlib.asynccontextmanager
async def session_on(
    plane: ControlPlane,
    workspace: Path,
    tmp: Path,
    *,
    prefix: str = "",
    clean_up: bool = False,
    operator_env: Mapping[str, str] | None = None,
) -> AsyncIterator[BenchSession]:
    """A session on an existing control plane (CRDs applied) and workspace.

    ``clean_up`` deletes the session's namespaces at the end (a shared control plane).
    """
    api = await api_client(plane)
    batch = InProcessBatchServer(latency=BATCH_LATENCY)
    batch.start()
    session = BenchSession(plane, api, workspace, batch, tmp, prefix, operator_env)
    try:
        yield session
    finally:
        await session.close()
        batch.stop()
        await api.close()
        if clean_up:
            await asyncio.gather(
                *(asyncio.to_thread(plane.delete_namespace, ns) for ns in session.namespaces)
            )


@contextlib.asynccontextmanager
async def own_session(operator_source: Path | None = None) -> AsyncIterator[BenchSession]:
    """A fresh control plane, CRDs and workspace in a temporary folder, for the CLI.

    ``operator_source``: a checkout of another commit whose operator, library and CRDs
    are measured instead of this tree's (same harness, same machine: a fair "before").
    """
    source = operator_source or ROOT
    env = {}
    if operator_source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source / "operator"), str(source)])
    with tempfile.TemporaryDirectory(prefix="wt-bench-") as name:
        tmp = Path(name)
        workspace = await asyncio.to_thread(make_workspace, tmp / "workspace")
        with start_control_plane(data_dir=tmp / "control-plane", envtest_script=ENVTEST) as plane:
            await asyncio.to_thread(apply_crds, plane, [source / "crds"])
            async with session_on(plane, workspace, tmp, operator_env=env) as session:
                yield session


def describe_machine() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_before": os.getloadavg(),
    }

"""A bare kopf operator making the requests wt-operator makes per run, and nothing else.

Exists to say how much of the operator's CPU and memory is kopf's own: the floor any
kopf operator pays per object with the same settings (:mod:`wt_operator.kopf_settings`),
watch and finalizer. Its daemon does what the operator's does on the API and no more,
over one aiohttp session with kopf's credentials:

* Local run: ``Running`` status + Event, a 50 ms pause for the workflow, ``Succeeded``
  status + Event (no process, no output, no log ConfigMap);
* CloudBatch run: ``Submitted`` status + Event, then it waits like a tracked job
  (no Batch call, no polling).

Run it as the benchmarks run the operator: ``python -m benchmarks.kopf_floor --namespace
NS --standalone`` (its liveness endpoint on ``WT_OPERATOR_HEALTH_PORT``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from wt_operator.shell.credentials import keep_client_library_out

keep_client_library_out()  # before kopf: the operator runs without the client library too

import aiohttp  # noqa: E402
import kopf  # noqa: E402

from wt_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION  # noqa: E402
from wt_operator.kopf_settings import configure_settings  # noqa: E402

WORKFLOW_SECONDS = 0.05
"""How long a Local run's workflow "runs" here."""

_MERGE = "application/merge-patch+json"


class _Api:
    """POST/PATCH JSON with the credentials of kopf's latest login."""

    def __init__(self) -> None:
        self.info: kopf.ConnectionInfo | None = None
        self.session: aiohttp.ClientSession | None = None

    async def send(self, method: str, path: str, body: Any, content_type: str) -> None:
        assert self.info is not None, "no login yet"
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ssl=self.info.as_ssl_context()),
                trust_env=False,
            )
        headers = {"Content-Type": content_type, **self.info.as_http_headers()}
        url = self.info.server.rstrip("/") + path
        async with self.session.request(method, url, data=json.dumps(body), headers=headers) as r:
            await r.read()
            r.raise_for_status()

    async def transition(self, namespace: str, name: str, uid: str, phase: str) -> None:
        """What the operator writes for one phase change: the status, then an Event."""
        runs = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        await self.send("PATCH", runs, {"status": {"phase": phase}}, _MERGE)
        event = {
            "metadata": {"generateName": f"{name}."},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": name,
                "namespace": namespace,
                "uid": uid,
            },
            "reason": phase,
            "message": phase,
            "type": "Normal",
        }
        await self.send("POST", f"/api/v1/namespaces/{namespace}/events", event, "application/json")


def _active(status: Any, **_: Any) -> bool:
    return (status or {}).get("phase") not in ("Succeeded", "Failed")


def registry() -> kopf.OperatorRegistry:
    """The floor's handlers: login, settings, one daemon per active run."""
    reg = kopf.OperatorRegistry()
    api = _Api()

    @kopf.on.login(registry=reg)
    def login(**kwargs: Any) -> Any:
        api.info = kopf.login_with_kubeconfig(**kwargs)
        return api.info

    @kopf.on.startup(registry=reg)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_settings(settings)

    @kopf.on.cleanup(registry=reg)
    async def cleanup(**_: Any) -> None:
        if api.session is not None:
            await api.session.close()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=reg, when=_active, cancellation_timeout=None)
    async def run(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        spec: Any,
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        namespace = namespace or ""  # WorkflowRuns are namespaced: kopf always gives one
        if spec.get("invoker") == "CloudBatch":
            await api.transition(namespace, name, uid, "Submitted")
            await stopped.wait()  # tracked until the operator stops
            return
        await api.transition(namespace, name, uid, "Running")
        await asyncio.sleep(WORKFLOW_SECONDS)
        await api.transition(namespace, name, uid, "Succeeded")

    return reg


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kopf_floor")
    parser.add_argument("--namespace", action="append", required=True)
    parser.add_argument("--standalone", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose)
    port = os.environ.get("WT_OPERATOR_HEALTH_PORT")
    kopf.run(
        registry=registry(),
        namespaces=args.namespace,
        standalone=True,
        liveness_endpoint=f"http://0.0.0.0:{port}/healthz" if port else None,
    )


if __name__ == "__main__":
    main()

"""How Flux (kstatus) and Argo CD (gitops/argocd/health.lua) judge WorkflowRuns.

The statuses come from the operator's real ``status_patch``; kstatus is the real Go
library, built once per go.mod+go.sum+main.go into ~/.cache/wt-envtest; the Lua check runs in lupa.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

from wt_operator.api import Phase, Reason
from wt_operator.core.status import Transition, status_patch

ROOT = Path(__file__).resolve().parents[2]
KSTATUS_SRC = ROOT / "hack" / "kstatus"
HEALTH_LUA = ROOT / "gitops" / "argocd" / "health.lua"
EXAMPLE = ROOT / "gitops" / "example" / "workflowrun.yaml"
CRD = ROOT / "crds" / "wt.dev_workflowruns.yaml"
NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _run(
    phase: str, reason: Reason, message: str, *, generation: int = 1, status_gen: int | None = None
) -> dict[str, Any]:
    obj = _fresh(generation)
    obj["status"] = status_patch(
        Transition(Phase(phase), Reason(reason), message),
        previous={},
        generation=status_gen or generation,
        now=NOW,
    )
    return obj


def _fresh(generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "run", "namespace": "default", "generation": generation},
        "spec": {
            "workflow": "wt-sample-workflow >=1.2",
            "invoker": "Local",
            "resultsUrl": "file:///tmp/results/",
        },
    }


# The status default in the CRD, which the API server serves for a run nobody wrote yet.
STATUS_DEFAULT: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "crds" / "wt.dev_workflowruns.yaml").read_text()
)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["default"]

# name → (object, kstatus status, Argo CD health status)
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "running": (_run("Running", Reason.RUNNING, "pid 42"), "InProgress", "Progressing"),
    "queued": (_run("Queued", Reason.QUEUED, "waiting for a slot"), "InProgress", "Progressing"),
    "submitted": (
        _run("Submitted", Reason.SUBMITTED, "job wt-1 QUEUED"),
        "InProgress",
        "Progressing",
    ),
    "succeeded": (_run("Succeeded", Reason.SUCCEEDED, "exit code 0"), "Current", "Healthy"),
    "failed-deadline": (
        _run("Failed", Reason.DEADLINE_EXCEEDED, "ran longer than 60s"),
        "Failed",
        "Degraded",
    ),
    "cancelled": (_run("Cancelled", Reason.CANCELLED, "deleted"), "Failed", "Degraded"),
    "stale-running": (
        _run("Running", Reason.RUNNING, "pid 42", generation=2, status_gen=1),
        "InProgress",
        "Progressing",
    ),
    "stale-succeeded": (
        _run("Succeeded", Reason.SUCCEEDED, "exit code 0", generation=2, status_gen=1),
        "InProgress",
        "Progressing",
    ),
    # kstatus has no way to tell "not picked up yet" from "needs no status": an object
    # without conditions is Current. That is why the CRD defaults the status …
    "fresh-no-status": (_fresh(), "Current", "Progressing"),
    # … so a brand-new run, as the API server serves it, is in progress for Flux too.
    "fresh-as-served": (_fresh() | {"status": STATUS_DEFAULT}, "InProgress", "Progressing"),
}


@pytest.fixture(scope="session")
def kstatus_bin() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the Go toolchain (`go`) is not on PATH: it is needed to build hack/kstatus, "
            "the real kstatus library Flux uses (install Go >= 1.22)"
        )
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((KSTATUS_SRC / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wt-envtest"
    binary = cache / f"kstatus-{digest.hexdigest()[:16]}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(f".tmp{os.getpid()}")
        proc = subprocess.run(
            [go, "build", "-o", str(tmp), "."],
            cwd=KSTATUS_SRC,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"building hack/kstatus failed:\n{proc.stderr}")
        tmp.replace(binary)
    return binary


def _kstatus(binary: Path, obj: dict[str, Any]) -> dict[str, str]:
    proc = subprocess.run(
        [str(binary)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.timeout(660)
@pytest.mark.parametrize("name", list(CASES))
def test_kstatus(kstatus_bin: Path, name: str) -> None:
    obj, expected, _ = CASES[name]
    got = _kstatus(kstatus_bin, obj)
    assert got["status"] == expected, got


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def _argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    check = lua.execute(f"return function(obj)\n{HEALTH_LUA.read_text()}\nend")
    hs = check(_to_lua(lua, copy.deepcopy(obj)))
    return hs["status"], hs["message"]


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_health(name: str) -> None:
    obj, _, expected = CASES[name]
    status, message = _argocd_health(obj)
    assert status == expected
    assert isinstance(message, str) and message
    status_gen = obj.get("status", {}).get("observedGeneration", obj["metadata"]["generation"])
    if "status" in obj and obj["metadata"]["generation"] == status_gen:
        assert message == obj["status"]["message"]


def test_argocd_health_without_status_waits_for_operator() -> None:
    assert _argocd_health(_fresh()) == ("Progressing", "Waiting for the operator")


def _validate(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """The structural subset of OpenAPI v3 the example can break: type, required, enum."""
    errors: list[str] = []
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}
    expected = schema.get("type")
    if expected in kinds and not isinstance(value, kinds[expected]):
        return [f"{path}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        props = schema.get("properties", {})
        for key, sub in value.items():
            if key in props:
                errors += _validate(sub, props[key], f"{path}.{key}")
            elif props and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{key}: unknown field")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _validate(item, schema["items"], f"{path}[{i}]")
    return errors


def test_example_workflowrun_matches_crd() -> None:
    crd = yaml.safe_load(CRD.read_text())
    example = yaml.safe_load(EXAMPLE.read_text())
    group = crd["spec"]["group"]
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert example["apiVersion"] == f"{group}/{version['name']}"
    assert example["kind"] == crd["spec"]["names"]["kind"]
    assert example["spec"]["invoker"] == "Local"
    assert example["spec"]["workflow"].startswith("wt-sample-workflow")
    assert _validate(example, version["schema"]["openAPIV3Schema"], "") == []


def test_validator_catches_bad_examples() -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bad = yaml.safe_load(EXAMPLE.read_text())
    bad["spec"]["invoker"] = "Kubernetes"
    del bad["spec"]["resultsUrl"]
    errors = _validate(bad, schema, "")
    assert any("invoker" in e for e in errors) and any("resultsUrl" in e for e in errors)


def test_gitops_manifests_point_at_the_example() -> None:
    flux = yaml.safe_load((ROOT / "gitops" / "flux" / "kustomization.yaml").read_text())
    assert flux["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert flux["kind"] == "Kustomization"
    assert flux["spec"]["path"] == "./gitops/example"
    assert flux["spec"]["wait"] is True and flux["spec"]["timeout"]
    app = yaml.safe_load((ROOT / "gitops" / "argocd" / "application.yaml").read_text())
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    assert app["spec"]["source"]["path"] == "gitops/example"
    assert app["spec"]["syncPolicy"]

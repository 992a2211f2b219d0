"""A run reaches nothing outside its namespace, and its workflow holds none of the operator's.

Issue 17's attacks, each as the attacker's manifest against the real API server and
the real operator: refused at ``kubectl apply`` by today's CRD, and — for objects
stored by an older CRD without the rule — ended ``InvalidSpec``/``PolicyDenied`` by the
operator with no value read, no request made and no file written.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import batch_spec, local_spec
from wt_envtest.crds import apply_crds
from wt_envtest.runs import Runs, condition
from wt_testkit.workflows import read_echo_file

pytestmark = pytest.mark.timeout(180)

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "wt.dev_workflowruns.yaml"
VICTIM_PASSWORD = "victim-db-pw-7f3a9c"
TRAVERSAL = "../../{victim}/secrets/db"


@pytest.fixture
def victim(control_plane: Any) -> Iterator[str]:
    """Another tenant's namespace holding a Secret ``db`` and a ConfigMap ``params``."""
    name = f"t-victim-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    password = base64.b64encode(VICTIM_PASSWORD.encode()).decode()
    for manifest in (
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db"},
            "data": {"password": password},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "params"},
            "data": {"run.yaml": f"token: {VICTIM_PASSWORD}\n  broken: [yaml"},
        },
    ):
        control_plane.kubectl("apply", "-n", name, "-f", "-", input=manifest)
    yield name
    control_plane.delete_namespace(name)


def _loosened(crd: Any) -> Any:
    """The CRD without the name rules of env and references: an older install."""
    if isinstance(crd, dict):
        return {
            k: _loosened(v)
            for k, v in crd.items()
            if k not in ("pattern", "x-kubernetes-validations")
        }
    if isinstance(crd, list):
        return [_loosened(v) for v in crd]
    return crd


async def _create_under_an_older_crd(
    control_plane: Any, runs: Runs, manifests: dict[str, dict[str, Any]]
) -> None:
    """Store ``manifests`` while the CRD lacks today's rules, then restore today's CRD."""
    crd = yaml.safe_load(CRD_PATH.read_text())
    control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=wt-tests",
        "-f",
        "-",
        input=_loosened(crd),
    )
    try:
        for name, spec in manifests.items():
            for attempt in range(100):  # the API server picks up the loosened CRD shortly
                try:
                    await runs.create(name, spec)
                    break
                except ApiException as exc:
                    if exc.status != 422 or attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
    finally:
        apply_crds(control_plane, [CRD_PATH])


def _traversal_manifests(victim: str, echo: Path) -> dict[str, dict[str, Any]]:
    path = TRAVERSAL.format(victim=victim)
    config = {"print_env": "DB", "echo_file": str(echo)}
    cm_path = f"../../{victim}/configmaps/params"
    from_cm = local_spec(configFrom={"configMapKeyRef": {"name": cm_path, "key": "run.yaml"}})
    del from_cm["config"]
    return {
        "steal-secret": local_spec(
            config,
            env=[{"name": "DB", "valueFrom": {"secretKeyRef": {"name": path, "key": "password"}}}],
        ),
        "steal-as-configmap": local_spec(
            config,
            env=[
                {"name": "DB", "valueFrom": {"configMapKeyRef": {"name": path, "key": "password"}}}
            ],
        ),
        "steal-config": from_cm,
    }


async def test_a_reference_to_another_namespace_is_refused_at_apply(
    runs: Runs, crds: Any, victim: str, tmp_path: Path
) -> None:
    for name, spec in _traversal_manifests(victim, tmp_path / "echo").items():
        with pytest.raises(ApiException) as err:
            await runs.create(name, spec)
        assert err.value.status == 422, name
        assert "should match" in err.value.body and ".name" in err.value.body, err.value.body


async def test_a_stored_reference_to_another_namespace_reads_nothing_of_it(
    start_operator: Any, runs: Runs, control_plane: Any, victim: str, tmp_path: Path
) -> None:
    # The issue's attack: on the operator before this change the first run Succeeded and its
    # workflow printed the victim's password.
    echo = tmp_path / "echo"
    manifests = _traversal_manifests(victim, echo)
    await _create_under_an_older_crd(control_plane, runs, manifests)
    op = start_operator()
    seen = ""
    for name in manifests:
        obj = await runs.wait_for(name, ["Succeeded", "Failed"])
        assert condition(obj, "Succeeded")["reason"] == "InvalidSpec", obj["status"]
        assert "is not a Kubernetes object name" in obj["status"]["message"]
        seen += json.dumps(obj) + str([e.message for e in await runs.events(name)])
    configmaps = await client.CoreV1Api(runs.api).list_namespaced_config_map(runs.namespace)
    seen += str([cm.data for cm in configmaps.items]) + op.logs()
    assert VICTIM_PASSWORD not in seen
    assert base64.b64encode(VICTIM_PASSWORD.encode()).decode() not in seen
    assert not echo.exists()  # no workflow started


async def test_a_config_that_does_not_parse_is_reported_without_its_text(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    await client.CoreV1Api(kube_api).create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "params"}, "data": {"run.yaml": "token: tk-91d2\n  bad: [x"}},
    )
    start_operator()
    spec = local_spec(configFrom={"configMapKeyRef": {"name": "params", "key": "run.yaml"}})
    del spec["config"]
    await runs.create("broken", spec)
    obj = await runs.wait_for("broken", ["Succeeded", "Failed"])
    assert condition(obj, "Succeeded")["reason"] == "InvalidSpec"
    assert "is not valid YAML (line 2" in obj["status"]["message"]
    assert "tk-91d2" not in json.dumps(obj)


@pytest.mark.parametrize(
    "name",
    [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "GCE_METADATA_HOST",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "TMPDIR",
        "XDG_CONFIG_HOME",
        "ld_preload",
        "tmpdir",  # an exact name, in another case
    ],
)
async def test_names_that_redirect_the_workflow_are_refused_at_apply(
    runs: Runs, crds: Any, name: str
) -> None:
    with pytest.raises(ApiException) as err:
        await runs.create("redirect", local_spec(env=[{"name": name, "value": "http://evil:8080"}]))
    assert err.value.status == 422
    assert f"env name {name} is reserved" in err.value.body


@pytest.mark.parametrize("name", ["my.var", "A-B", "1ABC"])
async def test_env_names_that_are_not_shell_names_are_refused_at_apply(
    runs: Runs, crds: Any, name: str
) -> None:
    with pytest.raises(ApiException) as err:
        await runs.create("odd-name", local_spec(env=[{"name": name, "value": "x"}]))
    assert err.value.status == 422 and "should match" in err.value.body


async def test_stored_redirecting_names_never_reach_the_workflow(
    start_operator: Any, runs: Runs, control_plane: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    manifests = {
        f"proxy-{i}": local_spec(
            {"append_to": str(marker)}, env=[{"name": n, "value": "http://evil:1"}]
        )
        for i, n in enumerate(["https_proxy", "REQUESTS_CA_BUNDLE", "my.var"])
    }
    await _create_under_an_older_crd(control_plane, runs, manifests)
    start_operator()
    for name in manifests:
        obj = await runs.wait_for(name, ["Succeeded", "Failed"])
        assert condition(obj, "Succeeded")["reason"] == "InvalidSpec", obj["status"]
    assert not marker.exists()


async def test_the_admins_allow_list_lets_only_its_names_reach_the_workflow(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    start_operator(WT_OPERATOR_ALLOWED_ENV="APP_*,REGION")
    await runs.create(
        "other", local_spec({"append_to": str(marker)}, env=[{"name": "DEBUG", "value": "1"}])
    )
    await runs.create("listed", local_spec(env=[{"name": "APP_MODE", "value": "fast"}]))
    other = await runs.wait_for("other", ["Succeeded", "Failed"])
    assert condition(other, "Succeeded")["reason"] == "InvalidSpec"
    assert "DEBUG is not in the admin's list" in other["status"]["message"]
    assert not marker.exists()
    listed = await runs.wait_for("listed", ["Succeeded", "Failed"])
    assert listed["status"]["phase"] == "Succeeded", listed["status"]


async def test_a_local_workflow_gets_none_of_the_operators_environment(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    echo = tmp_path / "echo"
    canary = f"canary-{secrets.token_hex(4)}"
    start_operator(
        OPERATOR_CANARY_TOKEN=canary,
        GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "operator-key.json"),
        WT_OPERATOR_WORKFLOW_ENV=json.dumps({"HTTPS_PROXY": "http://proxy.admin:3128"}),
    )
    await runs.create(
        "env", local_spec({"echo_file": str(echo)}, env=[{"name": "APP_MODE", "value": "fast"}])
    )
    obj = await runs.wait_for("env", ["Succeeded", "Failed"])
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    env = read_echo_file(echo).env
    assert canary not in json.dumps(env)
    operators = {"KUBECONFIG", "GOOGLE_APPLICATION_CREDENTIALS", "BATCH_EMULATOR_HOST"}
    assert not operators & env.keys()
    assert not [k for k in env if k.startswith(("WT_OPERATOR_", "KUBERNETES_"))]
    assert env["HTTPS_PROXY"] == "http://proxy.admin:3128"  # the admin's, for workflows
    assert env["APP_MODE"] == "fast"  # the run's own
    assert env["LANG"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert env["HOME"] == env["TMPDIR"] and env["PATH"]
    assert env["WT_RESULTS"] == "file:///tmp/wt-results/"  # what the launcher sets


async def test_local_results_outside_the_admins_root_are_denied(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    root.mkdir()
    outside = tmp_path / "outside"
    start_operator(WT_OPERATOR_LOCAL_RESULTS_ROOT=str(root))
    escape = local_spec({"result_file": "stolen"}, resultsUrl=f"file://{root}/../outside/")
    inside = local_spec({"result_file": "kept"}, resultsUrl=f"file://{root}/run-1/")
    await runs.create("escape", escape)
    await runs.create("inside", inside)
    denied = await runs.wait_for("escape", ["Succeeded", "Failed"])
    assert condition(denied, "Succeeded")["reason"] == "PolicyDenied"
    assert f"resultsUrl must be under {root}" in denied["status"]["message"]
    assert not outside.exists()
    kept = await runs.wait_for("inside", ["Succeeded", "Failed"])
    assert kept["status"]["phase"] == "Succeeded", kept["status"]
    assert (root / "run-1" / "kept").read_text().strip() == "ok"


async def test_results_in_a_bucket_outside_the_admins_list_are_denied_before_batch(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    start_operator(
        BATCH_EMULATOR_HOST=batch_server.address,
        GOOGLE_CLOUD_PROJECT="acme",
        WT_OPERATOR_BATCH_ALLOWED_RESULTS_BUCKETS="acme-*",
    )
    await runs.create("exfil", batch_spec(resultsUrl="gs://attacker-bucket/loot/"))
    obj = await runs.wait_for("exfil", ["Succeeded", "Failed"])
    assert condition(obj, "Succeeded")["reason"] == "PolicyDenied"
    assert "'attacker-bucket' is not allowed" in obj["status"]["message"]
    assert batch_server.created_jobs == 0

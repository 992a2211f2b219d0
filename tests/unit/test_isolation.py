"""A run reaches nothing outside its namespace and its workflow holds none of the operator's.

The pure decisions behind issue 17's boundary: which references, env names and
results locations a run may use, how a name becomes one API path segment, and the
environment a Local workflow starts from. The integration tier proves each one on
the real API server (``tests/integration/test_isolation.py``).
"""

from __future__ import annotations

import base64
import json
from pathlib import PurePath
from typing import Any

import pytest

from tests.unit.fakes import REF, UID, FakeBatch, FakeInvokers, make_runtime, reconcile
from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.core.environment import workflow_base_env
from wt_operator.core.errors import InvalidSpecError, ReferenceResolutionError
from wt_operator.core.policy import results_denied
from wt_operator.core.spec import KeyRef, config_text_problem, env_name_problem, parse_spec
from wt_operator.shell.credentials import Credentials
from wt_operator.shell.kube import KubeClient, segment

TRAVERSAL = "../../victim/secrets/db"
LOCAL: dict[str, Any] = {
    "workflow": "wt-sample-workflow",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/r",
}


def _ref(kind: str, name: str, key: str = "password") -> dict[str, Any]:
    return {"name": "DB", "valueFrom": {kind: {"name": name, "key": key}}}


@pytest.mark.parametrize("kind", ["secretKeyRef", "configMapKeyRef"])
@pytest.mark.parametrize("name", [TRAVERSAL, "..", "a/b", "Upper", "x" * 254])
def test_a_reference_that_is_not_an_object_name_is_invalid(kind: str, name: str) -> None:
    with pytest.raises(InvalidSpecError) as err:
        parse_spec({**LOCAL, "env": [_ref(kind, name)]}, uid="u")
    assert "is not a Kubernetes object name" in str(err.value)


@pytest.mark.parametrize("key", ["..", ".", "a/b", "k y"])
def test_a_reference_key_that_is_not_a_key_is_invalid(key: str) -> None:
    with pytest.raises(InvalidSpecError, match="is not a valid key"):
        parse_spec({**LOCAL, "env": [_ref("secretKeyRef", "db", key)]}, uid="u")


def test_config_from_another_namespace_is_invalid() -> None:
    ref = {"configMapKeyRef": {"name": "../../kube-system/configmaps/x", "key": "k"}}
    with pytest.raises(InvalidSpecError, match=r"spec.configFrom: ConfigMap name"):
        parse_spec({**LOCAL, "configFrom": ref}, uid="u")


def test_every_name_becomes_one_path_segment() -> None:
    assert segment(TRAVERSAL) == "..%2F..%2Fvictim%2Fsecrets%2Fdb"
    assert segment("wt-log-1") == "wt-log-1"
    for dots in (".", "..", ""):
        with pytest.raises(ReferenceResolutionError):
            segment(dots)


def test_a_config_error_says_where_never_what() -> None:
    why = config_text_problem("password: hunter2\n  bad: [indent")
    assert why is not None and "line" in why
    assert "hunter2" not in why and "bad" not in why
    assert config_text_problem("a: 1\n") is None


@pytest.mark.parametrize(
    "name",
    [
        "HTTPS_PROXY",
        "https_proxy",
        "Https_Proxy",
        "ALL_PROXY",
        "no_proxy",
        "GRPC_PROXY",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "ssl_cert_dir",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "SSLKEYLOGFILE",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_BATCH",
        "GCE_METADATA_HOST",
        "GOOGLE_CLOUD_PROJECT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "TMPDIR",
        "XDG_CONFIG_HOME",
        "ld_preload",
        "Path",
        "home",
        "KUBERNETES_SERVICE_HOST",
    ],
)
def test_names_that_redirect_the_workflow_are_reserved_in_any_case(name: str) -> None:
    why = env_name_problem(name)
    assert why is not None and "reserved" in why


@pytest.mark.parametrize("name", ["my.var", "A-B", "1ABC", "A B", "A=B", ""])
def test_env_names_are_shell_names(name: str) -> None:
    why = env_name_problem(name)
    assert why is not None and "is not a variable name" in why


def test_the_admins_allow_list_lets_only_its_names_pass() -> None:
    allowed = ("APP_*", "REGION")
    assert env_name_problem("APP_MODE", allowed=allowed) is None
    assert env_name_problem("REGION", allowed=allowed) is None
    assert "allowedEnv" in (env_name_problem("REGIONS", allowed=allowed) or "")
    assert env_name_problem("REGION\n", allowed=allowed) is not None
    # Reserved families never pass, whatever the allow-list says.
    assert "reserved" in (env_name_problem("HTTPS_PROXY", allowed=("*",)) or "")
    with pytest.raises(InvalidSpecError, match="allowedEnv"):
        parse_spec(
            {**LOCAL, "env": [{"name": "OTHER", "value": "x"}]}, uid="u", allowed_env=allowed
        )


def test_an_admitted_run_is_not_judged_again_by_newer_name_rules() -> None:
    old = {**LOCAL, "env": [{"name": "HTTPS_PROXY", "value": "x"}, _ref("secretKeyRef", "a.b")]}
    with pytest.raises(InvalidSpecError):
        parse_spec(old, uid="u")
    req = parse_spec(old, uid="u", admitted=True)
    assert [e.name for e in req.env] == ["HTTPS_PROXY", "DB"]


def test_the_workflow_starts_from_what_the_operator_chose() -> None:
    env = workflow_base_env(
        path="/opt/bin:/usr/bin", temp_dir="/tmp", admin_env={"HTTPS_PROXY": "http://proxy:3128"}
    )
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HTTPS_PROXY": "http://proxy:3128",
    }


@pytest.mark.parametrize(
    ("url", "denied"),
    [
        ("file:///results/run-1/", False),
        ("file:///results", False),
        ("/results/a", False),
        ("file:///results/../etc/", True),
        ("file:///results%2F..%2Fetc/", True),
        ("file:///resultsx/", True),
        ("/tmp/x", True),
        ("gs://any/x", False),
    ],
)
def test_local_results_stay_under_the_admins_root(url: str, denied: bool) -> None:
    verdict = results_denied(url, local_root=PurePath("/results"), buckets=())
    assert (verdict is not None) is denied
    if verdict is not None:
        assert verdict.reason == "PolicyDenied" and "/results" in verdict.message


@pytest.mark.parametrize(
    ("url", "denied"),
    [("gs://acme-results/r/", False), ("gs://evil/r/", True), ("gs://acme-results\n/r", True)],
)
def test_results_buckets_are_restricted_when_the_admin_lists_them(url: str, denied: bool) -> None:
    verdict = results_denied(url, local_root=None, buckets=("acme-*",))
    assert (verdict is not None) is denied


def test_no_root_and_no_buckets_restrict_nothing() -> None:
    assert results_denied("file:///anywhere", local_root=None, buckets=()) is None


def test_the_isolation_settings_are_read_and_checked() -> None:
    cfg = OperatorConfig.from_env(
        {
            "WT_OPERATOR_ALLOWED_ENV": "APP_*, REGION",
            "WT_OPERATOR_WORKFLOW_ENV": '{"HTTPS_PROXY": "http://proxy:3128"}',
            "WT_OPERATOR_LOCAL_RESULTS_ROOT": "/results/",
            "WT_OPERATOR_BATCH_ALLOWED_RESULTS_BUCKETS": "acme-*",
        }
    )
    assert cfg.allowed_env == ("APP_*", "REGION")
    assert cfg.workflow_env == {"HTTPS_PROXY": "http://proxy:3128"}
    assert str(cfg.local_results_root) == "/results"
    assert cfg.batch_policy.allowed_results_buckets == ("acme-*",)
    for bad in ('["HTTPS_PROXY"]', '{"A-B": "x"}', '{"A": 1}', "{"):
        with pytest.raises(ConfigError, match="WT_OPERATOR_WORKFLOW_ENV"):
            OperatorConfig.from_env({"WT_OPERATOR_WORKFLOW_ENV": bad})
    with pytest.raises(ConfigError, match="absolute"):
        OperatorConfig.from_env({"WT_OPERATOR_LOCAL_RESULTS_ROOT": "results"})


async def test_a_submitted_run_is_tracked_though_a_newer_list_reserves_its_env() -> None:
    # Stored and submitted before HTTPS_PROXY was reserved; the upgraded operator tracks it.
    batch = FakeBatch(states=["SUCCEEDED"])
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(batch_invoker=batch))
    spec = {
        "workflow": "wt-sample-workflow",
        "invoker": "CloudBatch",
        "resultsUrl": "gs://b/r/",
        "cloudBatch": {"image": "img"},
        "env": [{"name": "HTTPS_PROXY", "value": "http://p"}],
    }
    job = {"jobName": batch.job_name_for(UID, readable="nightly"), "state": "RUNNING"}
    await reconcile(runtime, spec, {"phase": "Submitted", "cloudBatch": job})
    assert kube.reasons == ["Succeeded"]
    assert batch.submitted == []


async def test_a_recorded_job_is_deleted_on_finalize_though_a_newer_list_reserves_its_env() -> None:
    batch = FakeBatch()
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(batch_invoker=batch))
    spec = {
        "workflow": "wt-sample-workflow",
        "invoker": "CloudBatch",
        "resultsUrl": "gs://b/r/",
        "cloudBatch": {"image": "img"},
        "env": [{"name": "https_proxy", "value": "http://p"}],
    }
    name = "projects/p/locations/us-central1/jobs/recorded"
    await runtime.finalize_unowned(
        REF, spec, {"phase": "Submitted", "cloudBatch": {"jobName": name, "state": "RUNNING"}}
    )
    assert batch.deleted == [name]
    assert kube.reasons == ["Cancelled"]


class _ScriptedApi(KubeClient):
    """KubeClient whose HTTP layer answers with ``reply`` and records the paths asked."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(Credentials())
        self.reply = reply
        self.paths: list[str] = []

    async def _send(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> bytes:
        self.paths.append(path)
        return json.dumps(self.reply).encode()


def _object(kind: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", "namespace": namespace}, "data": data}


async def test_a_reference_resolving_to_another_kind_or_namespace_reads_nothing() -> None:
    stolen = base64.b64encode(b"victim-pw").decode()
    for reply in (
        _object("Secret", "mine", {"k": stolen}),  # asked for a ConfigMap, got a Secret
        _object("ConfigMap", "victim", {"k": "victim-text"}),  # another namespace's
    ):
        api = _ScriptedApi(reply)
        with pytest.raises(ReferenceResolutionError) as err:
            await api.read_key("mine", KeyRef("ConfigMap", "params", "k"))
        assert "did not resolve to a ConfigMap of namespace 'mine'" in str(err.value)
        assert "victim-" not in str(err.value) and stolen not in str(err.value)
    api = _ScriptedApi(_object("ConfigMap", "mine", {"k": "mine-text"}))
    assert await api.read_key("mine", KeyRef("ConfigMap", "params", "k")) == "mine-text"


async def test_a_name_is_never_a_path_even_past_validation() -> None:
    api = _ScriptedApi(_object("Secret", "mine", {"k": base64.b64encode(b"v").decode()}))
    with pytest.raises(ReferenceResolutionError):
        await api.read_key("mine", KeyRef("Secret", "..", "k"))
    assert api.paths == []  # refused before any request
    await api.read_key("mine", KeyRef("Secret", "../../victim/secrets/db", "k"))
    # The request stays in the run's namespace: the name is one (percent-encoded) segment.
    assert api.paths == ["/api/v1/namespaces/mine/secrets/..%2F..%2Fvictim%2Fsecrets%2Fdb"]

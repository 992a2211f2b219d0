"""The Helm chart rendered by the real helm binary: the operator's pod and settings per value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.chart import (
    CHART,
    EVERYTHING,
    NON_DEFAULT,
    by_kind,
    env_of,
    pod_of,
    render,
    render_error,
    run,
)


@pytest.mark.parametrize(
    ("sets", "values"),
    [([], None), (NON_DEFAULT, None), ([], EVERYTHING)],
    ids=["default", "namespaced", "everything-on"],
)
def test_lint_is_clean(helm: Path, sets: list[str], values: Path | None) -> None:
    args = ["lint", str(CHART), "--strict"]
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    proc = run(helm, *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_install_watches_all_namespaces_standalone(helm: Path) -> None:
    docs = render(helm)
    deploy = by_kind(docs, "Deployment")[0]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    # One replica: --standalone, so no peering object to wait for, and none rendered.
    assert container["args"] == ["--all-namespaces", "--standalone", "--log-format=full"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"]["type"] == "Recreate"
    assert container["image"] == "ghcr.io/wt-dev/wt-operator:0.1.0"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    grace = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = env_of(docs)
    assert grace > float(env["WT_OPERATOR_KILL_GRACE_SECONDS"] or 0)
    assert by_kind(docs, "ClusterRole")
    assert not by_kind(docs, "ClusterKopfPeering")
    assert not by_kind(docs, "KopfPeering")
    assert not by_kind(docs, "Role")
    assert not by_kind(docs, "ServiceMonitor")  # no Prometheus Operator API here
    assert not by_kind(docs, "PrometheusRule")
    assert not by_kind(docs, "PodDisruptionBudget")
    assert by_kind(docs, "NetworkPolicy")


def test_operator_settings_have_their_defaults(helm: Path) -> None:
    env = env_of(render(helm))
    assert env["WT_OPERATOR_LOCAL_ENABLED"] == "true"
    assert env["WT_OPERATOR_LOCAL_LAUNCHER"] == "prefix"  # works on the read-only root
    assert env["WT_OPERATOR_LOG_MAX_BYTES"] == "524288"
    assert env["WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS"] == "false"
    unset = {
        "WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED",
        "WT_OPERATOR_BATCH_ALLOWED_PROJECTS",
        "WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS",
        "WT_OPERATOR_BATCH_ALLOWED_IMAGES",
        "GOOGLE_CLOUD_PROJECT",
    }
    assert not unset & env.keys()


def test_operator_settings_reach_the_operator(helm: Path) -> None:
    docs = render(
        helm,
        "operator.localEnabled=false",
        "operator.ttlSecondsAfterFinished=0",  # 0 is a setting ("delete at once"), not unset
        "operator.logFormat=json",
        "operator.logMaxBytes=1000000",
        "batch.allowedProjects={acme-prod,acme-*}",
        "batch.allowedServiceAccounts={*@acme.iam.gserviceaccount.com}",
        "batch.allowedImages={us-docker.pkg.dev/acme/*}",
        "batch.allowPlaintextSecrets=true",
        "extraArgs={--priority=7}",
    )
    env = env_of(docs)
    assert env["WT_OPERATOR_LOCAL_ENABLED"] == "false"
    assert env["WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED"] == "0"
    assert env["WT_OPERATOR_LOG_MAX_BYTES"] == "1000000"  # not 1e+06
    assert env["WT_OPERATOR_BATCH_ALLOWED_PROJECTS"] == "acme-prod,acme-*"
    assert env["WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS"] == "*@acme.iam.gserviceaccount.com"
    assert env["WT_OPERATOR_BATCH_ALLOWED_IMAGES"] == "us-docker.pkg.dev/acme/*"
    assert env["WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS"] == "true"
    args = pod_of(docs)["containers"][0]["args"]
    assert "--log-format=json" in args
    assert args[-1] == "--priority=7"
    ttl = env_of(render(helm, "operator.ttlSecondsAfterFinished=86400"))
    assert ttl["WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED"] == "86400"


def test_image_digest_wins_over_the_tag(helm: Path) -> None:
    digest = "sha256:" + "ab" * 32
    pod = pod_of(render(helm, "image.tag=1.2.3", f"image.digest={digest}"))
    assert pod["containers"][0]["image"] == f"ghcr.io/wt-dev/wt-operator@{digest}"
    tagged = pod_of(render(helm, "image.tag=1.2.3"))
    assert tagged["containers"][0]["image"] == "ghcr.io/wt-dev/wt-operator:1.2.3"
    assert "digest" in render_error(helm, "image.digest=latest")


def test_pod_security_is_restricted(helm: Path) -> None:
    pod = pod_of(render(helm, "workspace.image=x"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/tmp", "/workspace"} <= mounts  # writable temp and the copied workspace
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TMPDIR"] == env["HOME"] == "/tmp"  # nothing writes to the read-only root
    assert "resources" in pod["containers"][0]


def test_security_contexts_can_be_overridden_for_openshift(helm: Path) -> None:
    pod = pod_of(
        render(
            helm,
            "workspace.image=x",
            # OpenShift's restricted SCC assigns the uid and group: drop the fixed ones.
            "podSecurityContext.runAsUser=null",
            "podSecurityContext.runAsGroup=null",
            "podSecurityContext.fsGroup=null",
            # The runner then needs both uids named, within the project's range.
            "runner.operatorUid=1000700000",
            "runner.runAsUser=1000700001",
            "securityContext.readOnlyRootFilesystem=false",
        )
    )
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in pod["containers"] + pod["initContainers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_pod_extras_are_rendered(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING)
    pod = pod_of(docs)
    container = pod["containers"][0]
    assert {"name": "gcp-ca", "configMap": {"name": "corporate-ca"}} in pod["volumes"]
    assert {"name": "gcp-ca", "mountPath": "/etc/ssl/corporate", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert container["args"][-1] == "--priority=100"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    # Left out in the values: filled with a selector of this release's operator pods.
    assert spread["labelSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "wt-operator", "app.kubernetes.io/instance": "wt"}
    }
    assert pod["priorityClassName"] == "platform-critical"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_extra_objects_are_templated(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING, release="acme")
    maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    assert maps["acme-wt-operator-extra"]["data"] == {"release": "acme"}
    assert maps["acme-wt-operator-extra-string"]["data"] == {"chart": "wt-operator"}
    assert maps["acme-wt-operator-extra"]["metadata"]["namespace"] == "wt-system"


def test_umbrella_chart_keys_are_accepted_and_nothing_else(helm: Path) -> None:
    docs = render(helm, "global.imageRegistry=r.example", "enabled=false")
    assert by_kind(docs, "Deployment")  # accepted, and read by the parent, not here
    assert "additional properties 'unknown' not allowed" in render_error(helm, "unknown=1")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            ["workspace.volume.persistentVolumeClaim.claimName=workflows"],
            {"persistentVolumeClaim": {"claimName": "workflows"}},
        ),
        (
            [
                "workspace.volume.image.reference=registry.example/workflows:2",
                "workspace.volume.image.pullPolicy=IfNotPresent",
            ],
            {"image": {"reference": "registry.example/workflows:2", "pullPolicy": "IfNotPresent"}},
        ),
    ],
    ids=["pvc", "image-volume"],
)
def test_workspace_volume_is_mounted_as_the_workspace(
    helm: Path, source: list[str], expected: dict[str, Any]
) -> None:
    pod = pod_of(render(helm, "workspace.path=/srv/ws", *source))
    (volume,) = [v for v in pod["volumes"] if v["name"] == "workspace"]
    assert volume == {"name": "workspace", **expected}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["workspace"] == "/srv/ws"
    assert "initContainers" not in pod  # nothing copied: the volume is the workspace
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD"] == "/srv/ws"


def test_workspace_volume_and_image_together_are_refused(helm: Path) -> None:
    err = render_error(
        helm, "workspace.image=x", "workspace.volume.persistentVolumeClaim.claimName=w"
    )
    assert "workspace.image and workspace.volume both set" in err


def test_replicas_peer_through_a_normal_release_object(helm: Path) -> None:
    docs = render(helm, "replicaCount=2", "podDisruptionBudget.enabled=true")
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    # Not a hook: installed, upgraded and uninstalled with the release like the rest.
    assert not any(k.startswith("helm.sh/hook") for k in peering["metadata"]["annotations"])
    assert "--standalone" not in pod_of(docs)["containers"][0]["args"]
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    # One replica: a PDB would block every drain, so none even when asked for.
    assert not by_kind(render(helm, "podDisruptionBudget.enabled=true"), "PodDisruptionBudget")


def test_the_peering_identity_is_the_pod_name(helm: Path) -> None:
    # kopf otherwise derives it from the user name, which an arbitrary uid (OpenShift) lacks.
    [pod_id] = [e for e in pod_of(render(helm))["containers"][0]["env"] if e["name"] == "POD_ID"]
    assert pod_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

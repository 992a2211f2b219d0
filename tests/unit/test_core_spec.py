"""`core/spec.py`: a WorkflowRun's spec parsed into a run request, or refused as invalid."""

from __future__ import annotations

import pytest

from tests.unit.samples import LOCAL
from wt_operator.core.errors import InvalidSpecError
from wt_operator.core.spec import parse_spec


def test_explicit_run_id_and_references_are_kept_unresolved() -> None:
    req = parse_spec(
        {
            **{k: v for k, v in LOCAL.items() if k != "config"},
            "workflowRunId": "nightly-42",
            "configFrom": {"configMapKeyRef": {"name": "cfg", "key": "run.yaml"}},
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
                {
                    "name": "OPT",
                    "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k", "optional": True}},
                },
            ],
        },
        uid="u-2",
    )
    assert req.workflow_run_id == "nightly-42"
    assert req.config_text is None
    assert str(req.config_ref) == "ConfigMap 'cfg' key 'run.yaml'"
    assert [(e.name, e.ref.kind if e.ref else None) for e in req.env] == [
        ("TOKEN", "Secret"),
        ("OPT", "ConfigMap"),
    ]
    assert req.env[1].ref is not None and req.env[1].ref.optional


@pytest.mark.parametrize(
    ("workflow", "fragment"), [("", "not a valid MatchSpec"), ("pkg >=>=1", "not a valid")]
)
def test_unparseable_matchspec_is_an_invalid_spec(workflow: str, fragment: str) -> None:
    with pytest.raises(InvalidSpecError, match=fragment):
        parse_spec({**LOCAL, "workflow": workflow}, uid="u")


def test_cloud_batch_spec_maps_every_option() -> None:
    req = parse_spec(
        {
            **LOCAL,
            "invoker": "CloudBatch",
            "cloudBatch": {
                "image": "europe-docker.pkg.dev/p/r/wf:1",
                "cpuMilli": 2000,
                "memoryMib": 4096,
                "machineType": "n2-standard-4",
                "gpu": {"type": "nvidia-tesla-t4", "count": 2},
                "network": {"network": "n", "subnetwork": "s", "noExternalIp": True},
                "labels": {"team": "geo"},
            },
        },
        uid="u",
    )
    assert req.batch is not None
    opts = req.batch.options
    assert (opts.docker_image_uri, opts.cpu_milli, opts.memory_mib) == (
        "europe-docker.pkg.dev/p/r/wf:1",
        2000,
        4096,
    )
    assert (opts.machine_type, opts.gpu_type, opts.gpu_count) == (
        "n2-standard-4",
        "nvidia-tesla-t4",
        2,
    )
    assert (opts.network, opts.subnetwork, opts.no_external_ip) == ("n", "s", True)
    assert dict(opts.labels) == {"team": "geo"}


def test_cloud_batch_without_image_is_invalid() -> None:
    with pytest.raises(InvalidSpecError, match=r"cloudBatch\.image"):
        parse_spec({**LOCAL, "invoker": "CloudBatch"}, uid="u")


def test_an_environment_archive_is_parsed_for_local_runs_only_and_must_be_pinned() -> None:
    digest = "sha256:" + "ab" * 32
    archive = {"archiveUrl": "https://example.org/env.tar", "archiveDigest": digest}
    req = parse_spec({**LOCAL, "environment": archive}, uid="u")
    assert req.archive is not None
    assert (req.archive.url, req.archive.digest) == ("https://example.org/env.tar", digest)
    assert parse_spec(LOCAL, uid="u").archive is None
    with pytest.raises(InvalidSpecError, match="only with invoker Local"):
        parse_spec(
            {
                **LOCAL,
                "invoker": "CloudBatch",
                "cloudBatch": {"image": "i"},
                "environment": archive,
            },
            uid="u",
        )
    for bad, fragment in [
        ({**archive, "archiveDigest": "latest"}, "archiveDigest"),
        ({**archive, "archiveDigest": digest.upper()}, "archiveDigest"),
        ({"archiveUrl": "https://example.org/env.tar"}, "archiveDigest"),
        ({**archive, "archiveUrl": "file:///etc/passwd"}, "archiveUrl"),
    ]:
        with pytest.raises(InvalidSpecError, match=fragment):
            parse_spec({**LOCAL, "environment": bad}, uid="u")

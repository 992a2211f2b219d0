"""The API server enforces the WorkflowSchedule schema and the run's cancel-only mutability."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client import ApiException

from tests.integration.conftest import local_spec
from wt_envtest.runs import Runs

pytestmark = pytest.mark.integration


def schedule_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowSchedule",
        "metadata": {"name": name},
        "spec": {"schedule": "@daily", "runTemplate": {"spec": local_spec()}, **spec},
    }


async def test_a_run_may_only_be_cancelled_in_place(runs: Runs, crds: Any) -> None:
    await runs.create("r", local_spec())
    for change, why in [
        ({"spec": {"workflow": "other"}}, "immutable except spec.cancel"),
        ({"spec": {"mockIo": True}}, "immutable except spec.cancel"),  # a field added
        ({"spec": {"cancel": False}}, "can only be set to true"),
        ({"spec": {"cancel": True, "mockIo": True}}, "immutable except spec.cancel"),
    ]:
        with pytest.raises(ApiException) as err:
            await runs.patch("r", change)
        assert err.value.status == 422 and why in err.value.body, change
    cancelled = await runs.patch("r", {"spec": {"cancel": True}})
    assert cancelled["spec"]["cancel"] is True
    with pytest.raises(ApiException) as err:
        await runs.patch("r", {"spec": {"cancel": None}})
    assert err.value.status == 422 and "cannot be undone" in err.value.body


async def test_schedule_schema_defaults_and_refusals(runs: Runs, crds: Any) -> None:
    custom, ns = runs.custom, runs.namespace

    async def create(body: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = await custom.create_namespaced_custom_object(
            "wt.dev", "v1alpha1", ns, "workflowschedules", body
        )
        return obj

    made = await create(schedule_body("nightly"))
    assert {
        k: made["spec"][k]
        for k in (
            "timeZone",
            "suspend",
            "concurrencyPolicy",
            "successfulRunsHistoryLimit",
            "failedRunsHistoryLimit",
        )
    } == {
        "timeZone": "UTC",
        "suspend": False,
        "concurrencyPolicy": "Forbid",
        "successfulRunsHistoryLimit": 3,
        "failedRunsHistoryLimit": 1,
    }
    # The template's spec is editable (a schedule changes), unlike a run's.
    template = {"runTemplate": {"spec": local_spec(mockIo=True)}}
    await custom.patch_namespaced_custom_object(
        "wt.dev", "v1alpha1", ns, "workflowschedules", "nightly", {"spec": template},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    bad = {
        "cron-fields": schedule_body("a", schedule="* * *"),
        "policy": schedule_body("b", concurrencyPolicy="Sometimes"),
        # The template is checked by the run's own rules: reserved env, exclusive fields.
        "reserved-env": schedule_body(
            "c", runTemplate={"spec": local_spec(env=[{"name": "WT_SCHEDULED_TIME", "value": "x"}])}
        ),
        "both-configs": schedule_body(
            "d",
            runTemplate={
                "spec": local_spec(configFrom={"configMapKeyRef": {"name": "a", "key": "b"}})
            },
        ),
        "long-name": schedule_body("x" * 53),
    }
    for what, body in bad.items():
        with pytest.raises(ApiException) as err:
            await create(body)
        assert err.value.status == 422, what

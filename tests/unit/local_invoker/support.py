"""Starting a run of the sample workflow, shared by the LocalSubprocessInvoker tests."""

from __future__ import annotations

from pathlib import Path

from wt_invokers import LocalSubprocessInvoker
from wt_testkit.workflows import ConfigValue, workflow_config

LAUNCHERS = ["pixi", "prefix"]


def results_url(tmp_path: Path) -> str:
    return (tmp_path / "results").as_uri()


async def start(
    inv: LocalSubprocessInvoker, tmp_path: Path, run_id: str | None = None, **config: ConfigValue
) -> None:
    # The run id marks the run's processes, and a finished run's leftovers are killed by
    # marker machine-wide: one id per test, so two test sessions never kill each other's.
    the_id = run_id or f"run-{tmp_path.name}"
    await inv.run(the_id, workflow_config(**config), results_url(tmp_path), "local", True)

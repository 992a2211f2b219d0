"""Chaos tier: the integration fixtures, plus a per-scenario tally printed as a table.

Every scenario reports how many runs it drove and how many were lost (vanished
or never terminal), duplicated (a Batch job created twice, a workflow run twice)
or stuck (not terminal in time). The table is printed at the end of the session
and written to ``.pytest_cache/chaos-summary.md`` for the README.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures shared with this tier
    batch_server,
    pixi_bin,
    runs,
    start_operator,
    workspace,
)


@dataclasses.dataclass
class Tally:
    scenario: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0


_TALLIES: list[Tally] = []


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """Record this scenario's counts for the summary table."""
    t = Tally(scenario=request.node.name.removeprefix("test_").replace("_", " "))
    _TALLIES.append(t)
    return t


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TALLIES:
        return
    lines = [
        "| scenario | runs | lost | duplicated | stuck |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {t.scenario} | {t.runs} | {t.lost} | {t.duplicated} | {t.stuck} |" for t in _TALLIES
    ]
    table = "\n".join(lines)
    terminalreporter.write_sep("=", "chaos summary")
    terminalreporter.write_line(table)
    out = Path(".pytest_cache")
    out.mkdir(exist_ok=True)
    (out / "chaos-summary.md").write_text(table + "\n")

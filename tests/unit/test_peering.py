"""`shell/peering.py`: which operator replica leads."""

from __future__ import annotations

from wt_operator.shell.peering import oldest_first_priority


def test_the_oldest_replica_has_the_highest_priority() -> None:
    older, newer = oldest_first_priority(1_800_000_000.0), oldest_first_priority(1_800_000_000.5)
    assert older > newer
    assert len({oldest_first_priority(1_800_000_000.0) for _ in range(50)}) > 1  # no ties

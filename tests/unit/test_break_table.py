"""The break campaign's table (hack/break_on_purpose.json) still points at the product.

Each entry breaks one README promise by replacing one line; an entry whose line was
rewritten no longer breaks anything, and the campaign would only find out when someone
runs it. This keeps every entry applicable while the code moves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = json.loads((ROOT / "hack" / "break_on_purpose.json").read_text())


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_each_break_still_applies_to_exactly_one_place(entry: dict[str, str]) -> None:
    text = (ROOT / entry["file"]).read_text()
    assert text.count(entry["old"]) == 1, (
        f"{entry['id']}: its line is no longer in {entry['file']} exactly once; "
        "update the entry so the promise keeps a break"
    )
    assert entry["new"] != entry["old"]


def test_entry_ids_are_unique() -> None:
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids))

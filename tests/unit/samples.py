"""Spec and time values shared by the unit tests of the pure core."""

from __future__ import annotations

import datetime as dt

LOCAL = {
    "workflow": "patrol-report >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/r",
    "config": {"region": "north", "days": 3},
}

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)

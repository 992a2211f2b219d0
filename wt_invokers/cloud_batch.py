"""Placeholder until the implementation lands (being written now)."""

from __future__ import annotations

from wt_invokers.abstract import AbstractInvoker


class CloudBatchInvoker(AbstractInvoker):  # type: ignore[misc]
    pass

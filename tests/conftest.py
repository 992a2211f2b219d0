"""Shared by every test tier: registers the control-plane harness, which starts nothing
until a test requests ``control_plane`` (or a fixture built on it), and marks the tiers
that need it. Where the harness finds this project's envtest script and CRDs is set in
``pyproject.toml`` (``wt_envtest_script``, ``wt_envtest_crds``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["wt_envtest.plugin"]

_TESTS = Path(__file__).resolve().parent
_INTEGRATION_DIRS = (_TESTS / "integration", _TESTS / "chaos")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration and tests/chaos as ``integration``."""
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in _INTEGRATION_DIRS):
            item.add_marker(pytest.mark.integration)

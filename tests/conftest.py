"""Shared by every test tier: registers the control-plane plugin, which starts nothing
until a test requests ``control_plane`` (or a fixture built on it)."""

pytest_plugins = ["tests.kube"]

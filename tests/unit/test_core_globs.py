"""`core/globs.py`: the policy's allow-list patterns match whole values, literally."""

from __future__ import annotations

import pytest

from wt_operator.core.globs import glob_match


@pytest.mark.parametrize(
    ("pattern", "value", "allowed"),
    [
        ("us-docker.pkg.dev/acme/*", "us-docker.pkg.dev/acme/wf/x:1", True),
        ("us-docker.pkg.dev/acme/*", "us-docker.pkg.dev/acme-evil/x:1", False),
        ("acme-*", "acme-prod", True),
        ("acme-*", "xacme-prod", False),
        ("a.b", "aXb", False),
        # A trailing newline is not "the end": re.match with ^…$ let it through.
        ("acme-prod", "acme-prod\n", False),
        ("acme-*", "acme-prod\n", False),
    ],
)
def test_policy_globs_are_anchored_and_literal(pattern: str, value: str, allowed: bool) -> None:
    assert glob_match(value, [pattern]) is allowed

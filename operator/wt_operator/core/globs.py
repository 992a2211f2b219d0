"""The admin's ``*`` globs (allowed projects, images, env names, buckets), matched one way.

Exists so every allow-list matches a whole value: ``re.match`` with ``^…$`` let
``"img\\n"`` pass ``img`` (``$`` also matches before a final newline), so matching
is ``fullmatch`` here, once, for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["glob_match", "glob_regex"]


def glob_regex(pattern: str) -> str:
    """An anchored regular expression for a ``*`` glob (every other character literal).

    The chart's ValidatingAdmissionPolicies use the same translation in CEL (RE2, where
    ``$`` is the end of the text).
    """
    return "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def glob_match(value: str, patterns: Sequence[str]) -> bool:
    """Whether the whole of ``value`` matches one of ``patterns``."""
    return any(re.fullmatch(glob_regex(p), value) for p in patterns)

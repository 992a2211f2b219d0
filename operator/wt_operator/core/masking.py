"""Masking Secret values in everything the operator writes or logs.

Exists because a workflow may print what it was given, and its output reaches
``status.message``, Events, the stored log and the operator's own log. A Secret
does not appear there only in the exact form it was stored in: files made with
``kubectl create secret --from-file`` end in a newline the workflow will not
print, and a PEM key or a JSON credential spans lines that are printed (and
masked) one by one. So every form is a needle: the whole value, the value
without surrounding whitespace, and each non-trivial line of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "Masker"]

MASK = "***"
_MIN_VALUE = 3
"""Shorter values are not masked: masking every "a" would destroy the output and hide nothing."""
_MIN_LINE = 4
"""Shorter lines of a multi-line value (``}``, ``-----``) are structure, not secret."""


class Masker:
    """Replaces every known form of the given secret values with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for value in secrets:
            stripped = value.strip()
            if len(stripped) >= _MIN_VALUE:
                needles.add(stripped)
                if value != stripped and len(value) >= _MIN_VALUE:
                    needles.add(value)
            lines = [line.strip() for line in value.splitlines()]
            if len(lines) > 1:
                needles.update(line for line in lines if len(line) >= _MIN_LINE)
        # Longest first: a value that contains another is masked whole.
        ordered = sorted(needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """``text`` with every secret form replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

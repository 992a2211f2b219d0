"""What a conda prefix holds and how to activate it, cached per prefix.

Exists because an operator starts many runs of the same few environments: each
new invoker would otherwise parse every ``conda-meta/*.json`` (is_installed) and
run a shell to compute the activation (prefix launcher), milliseconds of CPU per
run. Both depend only on the prefix's contents, and installing or removing a
package rewrites ``conda-meta``, so its modification time keys the cache.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TypeVar

from rattler import PrefixRecord

from wt_invokers._activation import ActivationDelta, compute_activation

__all__ = ["activation", "cached_activation", "cached_records", "installed_records"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_records: dict[Path, tuple[int, list[PrefixRecord]]] = {}
_activations: dict[Path, tuple[int, ActivationDelta]] = {}
_T = TypeVar("_T")


def _stamp(prefix: Path) -> int | None:
    try:
        return (prefix / "conda-meta").stat().st_mtime_ns
    except OSError:
        return None


def _current(cache: dict[Path, tuple[int, _T]], prefix: Path, stamp: int | None) -> _T | None:
    """The cached value of ``prefix`` if it was computed at ``stamp``, else None."""
    with _lock:
        cached = cache.get(prefix)
    return cached[1] if cached is not None and cached[0] == stamp else None


def cached_records(prefix: Path) -> list[PrefixRecord] | None:
    """The records of ``prefix`` if cached and still current (one stat), else None."""
    return _current(_records, prefix, _stamp(prefix))


def cached_activation(prefix: Path) -> ActivationDelta | None:
    """The activation of ``prefix`` if cached and still current (one stat), else None."""
    return _current(_activations, prefix, _stamp(prefix))


def installed_records(prefix: Path) -> list[PrefixRecord]:
    """The package records of ``prefix`` (empty when it is not an environment). Blocking."""
    stamp = _stamp(prefix)
    if stamp is None:
        return []
    cached = _current(_records, prefix, stamp)
    if cached is not None:
        return cached
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            records.append(PrefixRecord.from_path(path))
        except Exception as exc:  # a half-written or foreign JSON file is not a package
            logger.debug("skipping unreadable %s: %s", path, exc)
    with _lock:
        _records[prefix] = (stamp, records)
    return records


def activation(prefix: Path) -> ActivationDelta:
    """The activation delta of ``prefix`` against this process's environment. Blocking.

    Raises ``FileNotFoundError`` when ``prefix`` is not a conda environment, and
    ``RuntimeError`` when its activation scripts fail.
    """
    stamp = _stamp(prefix)
    cached = _current(_activations, prefix, stamp)
    if cached is not None:
        return cached
    delta = compute_activation(prefix, os.environ)
    if stamp is not None:
        with _lock:
            _activations[prefix] = (stamp, delta)
    return delta

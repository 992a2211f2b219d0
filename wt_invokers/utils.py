"""Helpers upstream wt-invokers exposes as ``wt_invokers.utils``.

Exists for drop-in compatibility: code written against upstream imports
``yaml_to_json`` from here.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from wt_invokers.exceptions import InvokerConfigurationError

__all__ = ["yaml_to_json"]

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_to_json(text: str) -> str:
    """The YAML document ``text`` as JSON text (``json.dumps``'s default spacing, as upstream).

    Text that is not YAML raises ``ValueError`` (our
    :class:`~wt_invokers.exceptions.InvokerConfigurationError`) starting ``Invalid YAML:``.
    YAML dates become ISO 8601 text (upstream cannot serialise them at all).
    """
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        raise InvokerConfigurationError(f"Invalid YAML: {exc}") from exc
    return json.dumps(data, default=_json_default)


def _json_default(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

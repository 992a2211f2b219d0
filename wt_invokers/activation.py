"""Activating a conda prefix, public: the environment a workflow's processes start with.

A host that starts workflows in a prefix of its own (the operator's runner, a test
kit's stand-in for pixi) must give them the environment ``pixi run`` would. This
module is the supported way to compute it: :func:`compute_activation` runs the
prefix's activation scripts once; :func:`activation` and :func:`cached_activation`
keep the result per prefix until its ``conda-meta`` changes.
"""

from __future__ import annotations

from wt_invokers._activation import ActivationDelta, compute_activation
from wt_invokers._prefix import activation, cached_activation

__all__ = ["ActivationDelta", "activation", "cached_activation", "compute_activation"]

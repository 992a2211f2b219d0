"""Reading what a run references (its config ConfigMap, env Secrets) when it starts.

Exists so both reconcilers read references the same way and at the same
moment — just before starting, never earlier, so a Secret rotated while a run
was queued is read fresh — and collect the Secret values to mask.
"""

from __future__ import annotations

import asyncio
import dataclasses

from wt_operator.core.errors import ReferenceResolutionError
from wt_operator.core.masking import SecretBudget
from wt_operator.core.spec import RunRequest, config_text_problem
from wt_operator.shell.kube import Kube

__all__ = ["Resolved", "resolve"]


@dataclasses.dataclass(frozen=True)
class Resolved:
    config_text: str
    env: dict[str, str]
    """Literal and Secret/ConfigMap values, by name."""
    secrets: tuple[str, ...]
    """Values that came from Secrets: masked wherever the operator writes or logs."""
    gcp_secrets: dict[str, str]
    """Names → Secret Manager versions, for Batch to resolve (values never seen here)."""


async def resolve(
    kube: Kube, namespace: str, req: RunRequest, *, budget: SecretBudget | None = None
) -> Resolved:
    """Read the run's references. Raises ReferenceResolutionError for missing ones.

    ``budget`` bounds the Secret text read (InvalidSpecError above it): every line of it
    becomes needles of the run's masker.
    """
    config_text = req.config_text or ""
    if req.config_ref is not None:
        config_text = await kube.read_key(namespace, req.config_ref) or ""
        # Off the event loop: even bounded, parsing is CPU other runs should not wait on.
        why = await asyncio.to_thread(config_text_problem, config_text)
        if why is not None:
            raise ReferenceResolutionError(f"spec.configFrom: {req.config_ref} {why}")
    env: dict[str, str] = {}
    secrets: list[str] = []
    gcp: dict[str, str] = {}
    for item in req.env:
        if item.gcp_secret_version is not None:
            gcp[item.name] = item.gcp_secret_version
            continue
        if item.ref is None:
            env[item.name] = item.value or ""
            continue
        value = await kube.read_key(namespace, item.ref)
        if value is None:  # optional and missing: leave the variable unset
            continue
        env[item.name] = value
        if item.ref.kind == "Secret":
            if budget is not None:
                budget.add(f"env {item.name}", value)
            secrets.append(value)
    return Resolved(config_text, env, tuple(secrets), gcp)

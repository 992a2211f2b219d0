"""The environment a Local workflow starts from: chosen, never inherited.

Exists because the operator's own environment is the operator's: ``KUBECONFIG``,
``KUBERNETES_SERVICE_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, its ``WT_OPERATOR_*``
settings, whatever the admin put in the pod. A workflow run on a tenant's behalf
gets none of it. It starts from this value — a few variables programs need, whose
values the operator picks, plus what the admin gives workflows — and the launcher
adds the activation and the run's own variables on top. One pure function, so the
process that starts the workflow (in-process today, a runner container tomorrow)
receives the whole environment as data.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEFAULT_PATH", "LANG", "TZ", "workflow_base_env"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The search path when the operator has none (the image's usual directories)."""

LANG = "C.UTF-8"
"""A locale every glibc has, with UTF-8 text: workflows print and read non-ASCII names."""

TZ = "UTC"
"""Times in a workflow's output and file names read the same on every node."""


def workflow_base_env(
    *, path: str | None, temp_dir: str, admin_env: Mapping[str, str]
) -> dict[str, str]:
    """The environment every Local workflow starts from.

    ``path``: the operator image's search path (the directories of its programs, not a
    secret; the launcher and activation need it); ``temp_dir``: the writable directory
    for ``TMPDIR`` and ``HOME`` (the root filesystem is read-only in the chart);
    ``admin_env``: ``operator.workflowEnv``, e.g. a proxy the admin sets for workflows,
    which may set any of the others too.
    """
    env = {
        "PATH": path or DEFAULT_PATH,
        "HOME": temp_dir,
        "TMPDIR": temp_dir,
        "LANG": LANG,
        "TZ": TZ,
    }
    env.update(admin_env)
    return env

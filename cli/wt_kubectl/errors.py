"""The plugin's one error type, and the one place API failures become user sentences.

Every failure a user can cause or fix (a typo in a name, missing RBAC, no
kubeconfig, an unreachable cluster) ends as a single line on stderr that says
what to do, and exit code 1; ``__main__`` prints it, nothing else does::

    PluginError                 base: one line for the user, exit code 1
    ├── UsageError              bad input caught before any API call (file, flags)
    ├── ConfigError             no usable kubeconfig / context / cluster connection
    └── ApiError                the API server refused a call (404, 403, 422, …)

A workflow that ran and failed is not an error here either: ``wait`` turns it
into the process's exit code.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wt_operator.api import GROUP, VERSION

__all__ = ["ApiError", "ConfigError", "PluginError", "UsageError", "api_error"]

DOCS = "docs/kubectl-plugin.md"
"""Where the RBAC each command needs is written down (named in forbidden errors)."""


class PluginError(Exception):
    """A failure the user can act on; ``str()`` is the whole message."""

    exit_code = 1


class UsageError(PluginError):
    """Input refused before talking to the cluster (manifest, flags, durations)."""


class ConfigError(PluginError):
    """No kubeconfig, an unknown context, or a cluster that cannot be reached."""


class ApiError(PluginError):
    """The API server answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# Which namespace role grants a verb (see the RBAC table in docs/kubectl-plugin.md).
_ROLE_FOR_VERB = {"get": "view", "list": "view", "create": "edit"}


def _status_body(body: Any) -> dict[str, Any]:
    """The ``Status`` object of an error response, or {} when the body is not one."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str):
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) and parsed.get("kind") == "Status" else {}


def api_error(
    status: int,
    body: Any,
    *,
    verb: str,
    resource: str,
    namespace: str,
    name: str | None = None,
) -> ApiError:
    """Turn an API server error into one line that says what to do.

    ``resource`` is the plural with its group (``workflowruns.wt.dev``, ``configmaps``);
    the verb and resource come from the call we made, so the sentence is right even
    when the server's own message is terse.
    """
    info = _status_body(body)
    server_says = str(info.get("message") or "").strip()
    where = f'in namespace "{namespace}"'
    if status == 404:
        details = info.get("details") or {}
        if resource.startswith("workflowruns") and not details.get("name"):
            # No Status with the object's name: the resource type itself is unknown.
            return ApiError(
                f"the API server does not serve workflowruns.{GROUP}/{VERSION}: install the "
                "WorkflowRun CRD (crds/ or the wt-operator chart) or pick the right --context",
                status=status,
            )
        if details.get("kind") == "namespaces":
            # Creating in (or reading from) a namespace that does not exist.
            return ApiError(
                f'namespace "{details.get("name") or namespace}" not found (list namespaces '
                "with: kubectl get namespaces; pick another with -n)",
                status=status,
            )
        if resource.startswith("workflowruns"):
            return ApiError(
                f'workflowrun "{name}" not found {where} (list runs with: '
                f"kubectl get wfr -n {namespace}; pick another namespace with -n)",
                status=status,
            )
        return ApiError(f'{resource} "{name}" not found {where}', status=status)
    if status == 403:
        user = re.search(r'User "([^"]+)"', server_says)
        who = f'user "{user.group(1)}"' if user else "you"
        role = _ROLE_FOR_VERB.get(verb, "edit")
        return ApiError(
            f'forbidden: {who} may not {verb} {resource} {where}; this command needs "{verb}" '
            f"on {resource} there (the namespace's {role} role with the WorkflowRun rules, "
            f"see {DOCS})",
            status=status,
        )
    if status == 401:
        return ApiError(
            "the API server rejected your credentials (401 Unauthorized): log in again or "
            "pick another --context",
            status=status,
        )
    if status == 409 and verb == "create":
        return ApiError(
            f'workflowrun "{name}" already exists {where}: pick another --name, or leave the '
            "name out to get a generated one",
            status=status,
        )
    if status == 422 or status == 400:
        return ApiError(
            f"the API server refused the WorkflowRun: {server_says or 'invalid'} "
            "(fix the manifest; kubectl explain wfr.spec documents every field)",
            status=status,
        )
    detail = f": {server_says}" if server_says else ""
    return ApiError(
        f"{verb} {resource} {where} failed with HTTP {status}{detail}; try again, or check "
        "the API server's health",
        status=status,
    )

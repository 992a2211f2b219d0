"""``kubectl wt`` under RBAC and on errors: the documented roles suffice, errors read well."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import local_spec
from tests.integration.kubectl_plugin import kubectl_wt, manifest, plugin_env

pytestmark = pytest.mark.timeout(180)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "kubectl-plugin.md"


def documented_roles() -> list[dict[str, Any]]:
    """The Roles docs/kubectl-plugin.md tells users to apply (its yaml blocks)."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    docs = [d for block in blocks for d in yaml.safe_load_all(block) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") == "Role"]


async def test_the_documented_rbac_suffices_for_each_command(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any, tmp_path: Path
) -> None:
    start_operator()
    roles = {r["metadata"]["name"]: r for r in documented_roles()}
    assert set(roles) == {"wt-runs-viewer", "wt-runs-submitter"}
    kubeconfig: dict[str, str] = {}
    for role, account in (("wt-runs-viewer", "viewer"), ("wt-runs-submitter", "submitter")):
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=roles[role])
        kubeconfig[account] = str(control_plane.service_account_kubeconfig(namespace, account))
        control_plane.kubectl(
            "create",
            "rolebinding",
            account,
            "-n",
            namespace,
            f"--role={role}",
            f"--serviceaccount={namespace}:{account}",
        )
    run = tmp_path / "run.yaml"
    run.write_text(manifest(None, local_spec({"sleep": 1})))
    # --kubeconfig wins over KUBECONFIG (the admin's), and no -n: the context's namespace.
    proc = await kubectl_wt(
        control_plane, "--kubeconfig", kubeconfig["submitter"], "submit", "-f", str(run), "--wait"
    )
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    for command in ("wait", "describe", "logs"):
        proc = await kubectl_wt(control_plane, command, name, "--kubeconfig", kubeconfig["viewer"])
        assert proc.returncode == 0, (command, proc.stderr)
    proc = await kubectl_wt(control_plane, "rerun", name, "--kubeconfig", kubeconfig["viewer"])
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f'kubectl wt: forbidden: user "system:serviceaccount:{namespace}:viewer" may not create '
        f'workflowruns.wt.dev in namespace "{namespace}"; this command needs "create"'
    )
    assert proc.stderr.count("\n") == 1

    # Only `get` (no watch): wait still follows a run to its end, by polling.
    control_plane.kubectl(
        "create",
        "role",
        "getter",
        "-n",
        namespace,
        "--verb=get",
        "--resource=workflowruns.wt.dev",
    )
    getter = str(control_plane.service_account_kubeconfig(namespace, "getter"))
    control_plane.kubectl(
        "create",
        "rolebinding",
        "getter",
        "-n",
        namespace,
        "--role=getter",
        f"--serviceaccount={namespace}:getter",
    )
    await runs.create("polled", local_spec({"sleep": 3, "exit_code": 5}))
    proc = await kubectl_wt(control_plane, "wait", "polled", "--kubeconfig", getter)
    assert proc.returncode == 5, proc.stderr
    assert "polled: Running" in proc.stderr and "polled: Failed" in proc.stderr


async def test_errors_are_one_line_that_says_what_to_do(
    control_plane: Any, namespace: str, crds: Any, tmp_path: Path
) -> None:
    unreachable = tmp_path / "down.kubeconfig"
    unreachable.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    missing = tmp_path / "missing.yaml"
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("kind: [WorkflowRun\n")
    run = tmp_path / "run.yaml"
    run.write_text(manifest("r", local_spec({})))
    no_config = plugin_env(control_plane, KUBECONFIG=str(tmp_path / "none"), HOME=str(tmp_path))
    cases: list[tuple[list[str], dict[str, str] | None, str]] = [
        (
            ["describe", "nope", "-n", namespace],
            None,
            f'workflowrun "nope" not found in namespace "{namespace}" (list runs with: '
            f"kubectl get wfr -n {namespace}",
        ),
        (
            ["submit", "-f", str(run), "-n", "no-such-team"],
            None,
            'namespace "no-such-team" not found (list namespaces with: kubectl get namespaces',
        ),
        (["wait", "x"], no_config, "no kubeconfig found"),
        (["logs", "x", "--context", "nope"], None, 'cannot use context "nope"'),
        (["wait", "x", "--kubeconfig", str(unreachable)], None, "cannot reach the API server"),
        (["wait", "x", "--kubeconfig", str(missing)], None, "does not exist"),
        (["submit", "-f", str(missing)], None, f"cannot read {missing}"),
        (["submit", "-f", str(not_yaml)], None, "is not valid YAML (line 2)"),
        (["wait", "x", "--timeout", "soon"], None, 'invalid duration "soon"'),
    ]
    for args, env, says in cases:
        proc = await kubectl_wt(control_plane, *args, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("kubectl wt: ") and says in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr

"""How the operator logs in, and that the client library stays out of its process.

kopf imports every kubernetes_asyncio model (about 60 MB) when the library is
installed; the operator needs it only for kubeconfigs that run a credential plugin.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wt_operator.shell.credentials import kubeconfig_needs_plugins


def _kubeconfig(path: Path, user: dict[str, object]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("user", "plugin"),
    [
        ({"token": "abc"}, False),
        ({"client-certificate-data": "x", "client-key-data": "y"}, False),
        ({"exec": {"command": "gke-gcloud-auth-plugin", "apiVersion": "v1"}}, True),
        ({"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}}, True),
        ({"auth-provider": {"name": "gcp", "config": {"access-token": "x"}}}, False),
    ],
)
def test_only_credential_plugins_need_the_client_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: dict[str, object], plugin: bool
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config", user)))
    assert kubeconfig_needs_plugins() is plugin


def test_the_operator_process_does_not_load_the_client_library(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", {"token": "abc"})
    code = (
        "import sys\n"
        "from wt_operator.shell.credentials import keep_client_library_out\n"
        "print(keep_client_library_out())\n"
        "import wt_operator.serve\n"  # imports kopf, which would import the library
        "print(any(m.startswith('kubernetes_asyncio') for m in sys.modules if sys.modules[m]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"KUBECONFIG": str(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True", "False"]

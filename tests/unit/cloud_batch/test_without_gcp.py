"""Without the ``gcp`` extra: the library imports, and the invoker names what to install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from wt_invokers import CloudBatchInvoker
from wt_testkit.workflows import SAMPLE_WORKFLOW


def test_constructing_without_google_cloud_batch_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.cloud

    monkeypatch.delattr(google.cloud, "batch_v1", raising=False)
    monkeypatch.setitem(sys.modules, "google.cloud.batch_v1", None)  # import now fails
    with pytest.raises(
        ImportError,
        match=r"^Google Cloud Batch dependencies not available\. "
        r"Install with: pip install wt-invokers\[gcp\]$",
    ):
        CloudBatchInvoker(SAMPLE_WORKFLOW, project_id="p")


def test_wt_invokers_imports_without_google_installed() -> None:
    code = textwrap.dedent(
        """
        import importlib.abc, json, sys

        class NoGoogle(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "google" or name.startswith(("google.", "grpc")):
                    raise ImportError(f"{name} is not installed (simulated)")
                return None

        sys.meta_path.insert(0, NoGoogle())
        import wt_invokers
        try:
            from wt_invokers.cloud_batch import GCP_AVAILABLE
            wt_invokers.CloudBatchInvoker("wt-sample-workflow", project_id="p")
        except ImportError as exc:
            print(json.dumps([GCP_AVAILABLE, str(exc)]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [
        False,
        "Google Cloud Batch dependencies not available. Install with: pip install wt-invokers[gcp]",
    ]

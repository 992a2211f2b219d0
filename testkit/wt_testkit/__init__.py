"""Public test doubles for code that uses ``wt_invokers`` (like ``httpx.MockTransport``).

Exists apart from the library so that neither ``wt-invokers`` nor the operator
image carries them: install ``wt-testkit`` next to the library in a test
environment. Two stand-ins for what cannot run in a test:

* :mod:`wt_testkit.batch` — Google Cloud Batch as a real gRPC server on loopback,
  with job states on demand and fault injection (``python -m wt_testkit.batch``).
* :mod:`wt_testkit.workflows` — a real sample workflow package built offline into
  a real conda environment, its config/echo helpers, and a stand-in ``pixi``.

The names below are re-exported from those packages.
"""

from wt_testkit.batch import InProcessBatchServer, parse_lifecycle
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    SAMPLE_WORKFLOW_VERSION,
    WorkflowEcho,
    WorkflowPackage,
    make_workspace,
    make_workspace_async,
    process_is_alive,
    read_echo_file,
    wait_for_path,
    wait_process_gone,
    workflow_config,
    write_pixi_standin,
)

__all__ = [
    "SAMPLE_WORKFLOW",
    "SAMPLE_WORKFLOW_VERSION",
    "InProcessBatchServer",
    "WorkflowEcho",
    "WorkflowPackage",
    "make_workspace",
    "make_workspace_async",
    "parse_lifecycle",
    "process_is_alive",
    "read_echo_file",
    "wait_for_path",
    "wait_process_gone",
    "workflow_config",
    "write_pixi_standin",
]

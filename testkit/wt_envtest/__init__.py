"""The wt-operator's test harness: a real control plane, the operator as a process, runs.

Exists as an importable package so tests, benchmarks and the demo share one
harness with plain imports. One purpose per module:

* ``binaries`` — finding (or building, through the project's script) etcd,
  kube-apiserver, kubectl and helm
* ``processes`` — child processes that never outlive the run; free ports, log tails
* ``credentials`` — signing key, admin token, kubeconfigs, service-account tokens
* ``rest`` — plain HTTPS to the API server; ``tools`` — kubectl and helm
* ``control_plane`` — :class:`ControlPlane` (start, stop, restart) and
  :func:`start_control_plane` (also for an external ``WT_TEST_KUBECONFIG`` cluster)
* ``controllers`` — kube-controller-manager and kube-scheduler, for the tests that observe
  what controllers do (garbage collection, role aggregation, namespace deletion)
* ``namespaces`` — per-test namespaces, really deleted; ``crds`` — install and wait
* ``operator_process`` — ``python -m wt_operator`` as a child; ``runs`` — WorkflowRuns
* ``plugin`` — the pytest fixtures and hooks (``pytest_plugins = ["wt_envtest.plugin"]``)

Outside pytest (benchmarks, demo) use :func:`start_control_plane` as a context manager.
"""

from wt_envtest.binaries import TOOLS, EnvtestUnavailable, find_bin_dir
from wt_envtest.control_plane import ControlPlane, start_control_plane
from wt_envtest.crds import apply_crds
from wt_envtest.operator_process import OperatorProcess
from wt_envtest.processes import free_port, tcp_connections_to
from wt_envtest.rest import ApiError
from wt_envtest.runs import Runs, condition
from wt_envtest.tools import CommandError

__all__ = [
    "TOOLS",
    "ApiError",
    "CommandError",
    "ControlPlane",
    "EnvtestUnavailable",
    "OperatorProcess",
    "Runs",
    "apply_crds",
    "condition",
    "find_bin_dir",
    "free_port",
    "start_control_plane",
    "tcp_connections_to",
]

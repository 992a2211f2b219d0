"""An in-process Google Cloud Run Jobs service (``google.cloud.run.v2`` Jobs + Executions).

Exists because GCP cannot run in a test, yet the code under test should talk to
Cloud Run through the *real* ``google-cloud-run`` async clients over real gRPC,
as the Batch stand-in (:mod:`wt_testkit.batch`) does for Batch. Implemented RPCs:
GetJob, RunJob, GetExecution, ListExecutions, CancelExecution; jobs are deployed
by the test; fault injection by RPC name (``NOT_FOUND`` comes from an undeployed
job, ``UNAVAILABLE`` and quota's ``RESOURCE_EXHAUSTED`` from ``fail_next``).

Modules: ``executions`` (the store and the RPCs), ``server`` (gRPC wiring).
"""

from wt_testkit.cloudrun.executions import METHODS, STATES, ExecutionStore
from wt_testkit.cloudrun.server import InProcessCloudRunServer

__all__ = ["METHODS", "STATES", "ExecutionStore", "InProcessCloudRunServer"]

"""An in-process Google Cloud Batch (``google.cloud.batch.v1.BatchService``) for tests.

Exists because GCP itself cannot run in a test, yet the code under test should
talk to Batch through the *real* ``google-cloud-batch`` async client over real
gRPC: this server speaks the same wire protocol with the proto messages shipped
in ``google-cloud-batch``, validates like the real service, and adds the knobs a
test needs — job states on demand, an automatic lifecycle, injected latency and
faults, and counters to assert on. A public test double, like ``httpx.MockTransport``.

In-process use (sync or async tests)::

    with InProcessBatchServer(latency=0.02) as server:
        os.environ["BATCH_EMULATOR_HOST"] = server.address  # '127.0.0.1:PORT'
        ...
        server.set_job_state("wt-run-1-0123456789ab", "SUCCEEDED")
        server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=3)
        assert server.created_jobs == 1

Implemented RPCs: CreateJob, GetJob, ListJobs, DeleteJob and CancelJob (the two
long-running ones return an already-finished ``Operation``). DeleteJob removes the
job at once; CancelJob moves a non-terminal job to ``CANCELLED``.

Lifecycle: ``lifecycle=[("SCHEDULED", 0.1), ("RUNNING", 0.2), ("SUCCEEDED", None)]``
moves each new job into each state that many seconds after its creation. ``None``
keeps the rhythm: as long after the previous step as that one came after its own
predecessor (so the example reaches SUCCEEDED at 0.3 s). ``lifecycle`` may also
be a callable ``(job: batch_v1.Job) -> steps``, evaluated once per job at
creation. A job takes the lifecycle in force when it is created; with none, it
stays ``QUEUED`` until :meth:`InProcessBatchServer.set_job_state` moves it (which
also stops its lifecycle).

As a separate process, with a JSON control endpoint (:mod:`wt_testkit.batch.control`)::

    python -m wt_testkit.batch --port 0 --latency 0.02 \\
        --lifecycle "SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED" [--deny-create PERMISSION_DENIED] \\
        [--control-port 0] [--host 127.0.0.1]

Modules: ``lifecycle`` (states, steps), ``jobs`` (the store and the five RPCs),
``faults`` (fault injection), ``server`` (gRPC wiring), ``control`` (HTTP), ``cli``.
"""

from wt_testkit.batch.cli import main
from wt_testkit.batch.faults import METHODS, SERVICE
from wt_testkit.batch.lifecycle import Lifecycle, LifecycleStep, parse_lifecycle
from wt_testkit.batch.server import InProcessBatchServer

__all__ = [
    "METHODS",
    "SERVICE",
    "InProcessBatchServer",
    "Lifecycle",
    "LifecycleStep",
    "main",
    "parse_lifecycle",
]

"""One-command demo: a real wt-operator on a real Kubernetes API server (``make demo``).

1. etcd + kube-apiserver from ``hack/envtest.sh`` (built once, cached)
2. the CRDs from ``crds/`` (waited until Established and served)
3. the sample workflow package built offline into a local conda environment
4. ``wt-operator`` as a real process (the ``prefix`` launcher: no pixi needed)
5. three WorkflowRuns from ``crds/samples/``: one succeeds, one fails, one is cancelled
6. ``kubectl get wfr``, each final status and the Events
7. ``kubectl wt``: submit and wait for the exit code, the stored output, describe, rerun
8. a CloudBatch run against the Batch stand-in (Google Cloud Batch cannot run here):
   submitted, tracked to Succeeded, its Cloud Logging link — then everything is torn down
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from wt_envtest import ControlPlane, OperatorProcess, apply_crds, start_control_plane
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import make_workspace

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "crds" / "samples"
NS = "demo"


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def phase(plane: ControlPlane, name: str) -> str:
    out = plane.kubectl("get", "wfr", name, "-n", NS, "-o", "jsonpath={.status.phase}", check=False)
    return str(out.stdout).strip()


def wait_phase(plane: ControlPlane, name: str, phases: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = phase(plane, name)
        if current in phases:
            return current
        time.sleep(0.2)
    raise SystemExit(f"demo: {name} did not reach {phases} in {timeout}s")


def wt(plane: ControlPlane, *args: str) -> int:
    """Run ``kubectl wt ARGS -n demo`` and show it as a user would see it."""
    print(f"$ kubectl wt {' '.join(args)}")
    out = plane.kubectl("wt", *args, "-n", NS, check=False)
    for text in (out.stdout, out.stderr):
        if text.strip():
            print(text.rstrip())
    print(f"(exit code {out.returncode})")
    return int(out.returncode)


def plugin_tour(plane: ControlPlane) -> bool:
    step("kubectl wt: submit and wait (exits with the workflow's code), logs, describe, rerun")
    ok = (
        wt(plane, "submit", "-f", str(SAMPLES / "local-success.yaml"), "--name", "via-wt", "--wait")
        == 0
    )
    wt(plane, "logs", "sample-fails")
    wt(plane, "describe", "sample-fails")
    ok = wt(plane, "rerun", "sample-fails", "--wait", "--timeout", "60s") == 3 and ok
    return ok


def batch_tour(plane: ControlPlane) -> bool:
    step("A CloudBatch run (Google Cloud Batch is the stand-in here)")
    print(plane.kubectl("apply", "-n", NS, "-f", str(SAMPLES / "cloudbatch.yaml")).stdout.strip())
    ok = wt(plane, "wait", "sample-batch", "--timeout", "60s") == 0
    wt(plane, "describe", "sample-batch")
    wt(plane, "logs", "sample-batch")
    print(plane.kubectl("get", "wfr", "-n", NS, "-o", "wide").stdout)
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wt-demo-") as tmp_name:
        tmp = Path(tmp_name)
        step("Starting etcd + kube-apiserver (hack/envtest.sh binaries)")
        envtest = ROOT / "hack" / "envtest.sh"
        with start_control_plane(data_dir=tmp / "control-plane", envtest_script=envtest) as plane:
            print(f"API server {plane.server} ready in {plane.startup_seconds:.1f}s")
            step("Installing the CRDs")
            print("established and served: " + ", ".join(apply_crds(plane, [ROOT / "crds"])))
            plane.kubectl("create", "namespace", NS)
            # api-resources refreshes kubectl's discovery cache (and shows wfr / category wt).
            print(plane.kubectl("api-resources", "--api-group=wt.dev").stdout.strip())
            # The CRD's OpenAPI schema is published a few seconds after Established.
            for _ in range(50):
                explained = plane.kubectl("explain", "wfr.spec.invoker", check=False)
                if explained.returncode == 0:
                    print(explained.stdout.strip())
                    break
                time.sleep(0.2)

            step("Building the sample workflow package offline into a conda environment")
            workspace = make_workspace(tmp / "workspace")
            print(f"workspace: {workspace} (environment .pixi/envs/default)")

            step("Starting the Batch STAND-IN (a gRPC BatchService on loopback) and wt-operator")
            batch = InProcessBatchServer(lifecycle=[("RUNNING", 1.0), ("SUCCEEDED", 3.0)]).start()
            operator = OperatorProcess(
                kubeconfig=plane.kubeconfig,
                namespaces=[NS],
                workspace=workspace,
                log_path=tmp / "operator.log",
                env={
                    "WT_OPERATOR_LOCAL_LAUNCHER": "prefix",
                    "BATCH_EMULATOR_HOST": batch.address,
                    "GOOGLE_CLOUD_PROJECT": "my-project",
                    "WT_OPERATOR_BATCH_POLL_INTERVAL": "1",
                },
            ).start()
            try:
                step("Applying three WorkflowRuns")
                for sample in ("local-success.yaml", "local-failure.yaml", "local-long.yaml"):
                    print(
                        plane.kubectl("apply", "-n", NS, "-f", str(SAMPLES / sample)).stdout.strip()
                    )
                wait_phase(plane, "sample-long", {"Running"})
                print(plane.kubectl("get", "wfr", "-n", NS).stdout)

                step("Cancelling sample-long by deleting it (its process tree is killed)")
                plane.kubectl("delete", "wfr", "sample-long", "-n", NS, "--timeout=30s")
                wait_phase(plane, "sample-succeeds", {"Succeeded", "Failed"})
                wait_phase(plane, "sample-fails", {"Succeeded", "Failed"})

                step("kubectl get wfr")
                print(plane.kubectl("get", "wfr", "-n", NS).stdout)
                step("Final statuses")
                for name in ("sample-succeeds", "sample-fails"):
                    obj = json.loads(
                        plane.kubectl("get", "wfr", name, "-n", NS, "-o", "json").stdout
                    )
                    st = obj["status"]
                    conds = {c["type"]: f"{c['status']}/{c['reason']}" for c in st["conditions"]}
                    print(f"{name}: phase={st['phase']} exitCode={st.get('exitCode')} {conds}")
                    print("  message: " + st["message"].replace("\n", "\n    "))
                step("Events (the cancelled run is gone; its Events remain)")
                print(
                    plane.kubectl(
                        "get",
                        "events",
                        "-n",
                        NS,
                        "--sort-by=.lastTimestamp",
                        "-o",
                        "custom-columns=OBJECT:.involvedObject.name,TYPE:.type,"
                        "REASON:.reason,MESSAGE:.message",
                    ).stdout
                )
                ok = phase(plane, "sample-succeeds") == "Succeeded" and (
                    phase(plane, "sample-fails") == "Failed"
                )
                ok = plugin_tour(plane) and ok
                ok = batch_tour(plane) and ok
            finally:
                step("Tearing down: operator, Batch stand-in, kube-apiserver, etcd")
                operator.stop()
                batch.stop()
        print("done." if ok else "demo: unexpected final phases")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The node itself: a pod from the operator's image runs on it and reaches the API server
the way the operator will (the ``kubernetes`` Service's env, the projected token and CA)."""

from __future__ import annotations

import json

from tests.node.conftest import wait_for
from wt_envtest.node import Node

_PROBE = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
env = os.environ
url = f"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}/version"
token = open(sa + "/token").read()
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
version = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["gitVersion"]
print(json.dumps({"url": url, "version": version}))
"""


def test_a_pod_of_the_operator_image_runs_and_reaches_the_api_server(
    node: Node, node_image: str
) -> None:
    plane = node.plane
    plane.kubectl(
        "run", "probe", "--namespace=default", f"--image={node_image}",
        "--image-pull-policy=Never", "--restart=Never", "--command", "--",
        "/opt/wt/bin/python", "-c", _PROBE,
    )  # fmt: skip

    def phase() -> str:
        pod = plane.api("GET", "/api/v1/namespaces/default/pods/probe")
        return str(pod.get("status", {}).get("phase", ""))

    def sandbox_failures() -> list[str]:
        events = plane.api(
            "GET",
            "/api/v1/namespaces/default/events"
            "?fieldSelector=involvedObject.name=probe,reason=FailedCreatePodSandBox",
        )
        return [str(e.get("message", "")) for e in events["items"]]

    # A pod whose sandbox cannot start (runc refusing it) would wait forever: stop at once.
    wait_for(
        "the probe pod to finish",
        lambda: phase() in ("Succeeded", "Failed") or bool(sandbox_failures()),
        node=node,
    )
    assert sandbox_failures() == []
    logs = plane.kubectl("logs", "--namespace=default", "probe").stdout
    assert phase() == "Succeeded", logs
    seen = json.loads(logs.strip().splitlines()[-1])
    # Through the kubernetes Service's ClusterIP, verified against the cluster's CA.
    assert seen == {"url": "https://10.0.0.1:443/version", "version": "v1.37.2"}
    plane.kubectl("delete", "pod", "probe", "--namespace=default", "--wait=false")

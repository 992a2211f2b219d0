"""A real OCI registry (distribution's ``registry``) on 127.0.0.1, for release tests.

Exists so that "push the image and the chart, then ``helm install oci://…``" is proven
against the registry server most registries are built on, not against a directory: the
same HTTP API, manifests and digests users meet on ghcr.io or Artifact Registry. Plain
HTTP on loopback (clients are told with ``--plain-http`` / ``--tls-verify=false``);
storage in a folder of its own, removed with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wt_envtest.processes import free_port, kill_group, spawn, tail

__all__ = ["Registry", "RegistryUnavailable", "find_registry", "run_registry"]


class RegistryUnavailable(RuntimeError):
    """The registry binary is missing, or the server did not answer."""


def find_registry(script: Path) -> Path:
    """The registry binary: the last stdout line of ``script`` (``hack/registry.sh``)."""
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise RegistryUnavailable(
            f"{script.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return Path(lines[-1])


@dataclasses.dataclass(kw_only=True)
class Registry:
    """A running registry: ``address`` is ``127.0.0.1:<port>``."""

    binary: Path
    data_dir: Path
    address: str = ""
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "registry.log"

    def start(self, timeout: float = 30.0) -> Registry:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.address = f"127.0.0.1:{free_port()}"
        config = self.data_dir / "config.yml"
        # JSON is YAML: the registry reads it as its config file.
        config.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "warn"},
                    "storage": {
                        "filesystem": {"rootdirectory": str(self.data_dir / "storage")},
                        "delete": {"enabled": True},
                    },
                    "http": {"addr": self.address},
                }
            )
        )
        self._proc = spawn([str(self.binary), "serve", str(config)], self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if self.get("/v2/") is not None:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RegistryUnavailable(f"the registry did not answer:\n{tail(self.log)}")

    def get(self, path: str, accept: str = "application/json") -> Any:
        """GET ``path`` of the registry API: decoded JSON, or None on 404."""
        request = urllib.request.Request(f"http://{self.address}{path}", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=5) as rsp:
                body = rsp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return json.loads(body) if body else {}

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest the registry serves for ``repository:reference`` (None when absent)."""
        accept = ",".join(
            (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.index.v1+json",
            )
        )
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repository}/manifests/{reference}",
            headers={"Accept": accept},
            method="HEAD",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as rsp:
                digest = rsp.headers.get("Docker-Content-Digest")
                return str(digest) if digest else None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def stop(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None


@contextlib.contextmanager
def run_registry(script: Path, data_dir: Path) -> Iterator[Registry]:
    """A registry for the ``with`` block, built by ``script`` on first use."""
    registry = Registry(binary=find_registry(script), data_dir=data_dir).start()
    try:
        yield registry
    finally:
        registry.stop()

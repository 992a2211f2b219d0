"""The image's lock (operator/requirements.lock) matches pyproject.toml: offline, no buildah.

A dependency added to, removed from or changed in the project's dependencies or its
``operator`` extra changes the digest the lock records, so the lock is stale until
``make lock`` runs again; and every direct requirement's pin must satisfy it.
"""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from hack.image import lock


def _pyproject() -> dict[str, object]:
    return tomllib.loads(lock.PYPROJECT.read_text())


def test_the_lock_was_compiled_from_the_current_operator_dependencies() -> None:
    requirements = lock.image_requirements(_pyproject())
    recorded = lock.recorded_digest(lock.LOCK.read_text())
    assert recorded == lock.input_digest(requirements), (
        "operator/requirements.lock is stale: pyproject.toml's dependencies or its "
        "`operator` extra changed since it was written; run `make lock` and commit it"
    )


def test_every_direct_requirement_is_pinned_to_a_version_it_allows() -> None:
    pinned = lock.pins(lock.LOCK.read_text())
    for line in lock.image_requirements(_pyproject()):
        req = Requirement(line)
        name = lock._canonical(req.name)
        assert name in pinned, f"{req.name} is not in operator/requirements.lock (make lock)"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{line} but the lock pins {pinned[name]} (make lock)"
        )


def test_the_operator_extra_expands_self_references() -> None:
    # `wt-invokers[gcp]` inside the operator extra means the gcp extra's packages.
    pyproject = {
        "project": {
            "name": "wt-invokers",
            "dependencies": ["PyYAML>=6"],
            "optional-dependencies": {
                "gcp": ["grpcio>=1.60"],
                "operator": ["wt-invokers[gcp]", "kopf>=1.38"],
                "test": ["pytest>=8"],
            },
        }
    }
    assert lock.image_requirements(pyproject) == ["grpcio>=1.60", "kopf>=1.38", "PyYAML>=6"]

"""One invocation of a workflow, typed, and the command line every workflow understands.

Exists so both invokers build the workflow's command line from one definition
(``<name> run --config-… --execution-mode … --mock-io|--no-mock-io
[--otel-exporter …]``) and validate the same inputs the same way, and so typed
callers (the operator) can hand an :class:`Invocation` to ``start()``/``submit()``
where a misspelt field is a type error — the seed's tolerant ``run(**kwargs)``
builds one of these too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

import yaml

from wt_invokers.exceptions import InvokerConfigurationError

__all__ = [
    "MAX_ARG_BYTES",
    "Invocation",
    "compact_json",
    "parse_yaml",
    "warn_unknown_options",
    "workflow_args",
]

logger = logging.getLogger(__name__)

MAX_ARG_BYTES = 128 * 1024 - 1
"""Longest single argument or ``NAME=value`` string Linux execs (MAX_ARG_STRLEN, less its NUL)."""

# libyaml's safe loader when PyYAML was built with it: same documents, ~10x faster,
# which matters when an operator submits hundreds of runs a second.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_warned: set[tuple[str, str]] = set()


@dataclasses.dataclass(frozen=True)
class Invocation:
    """What one run of a workflow is told: the seed's ``run()`` arguments, typed."""

    workflow_run_id: str
    """The run id the workflow is told (in ``WT_INVOKERS__RUN_ID``)."""
    config_text: str
    """The workflow's parameters, YAML."""
    results_url: str
    """Where it writes results, passed in the results variable."""
    execution_mode: str
    mock_io: bool
    otel_exporter: str | None = None
    otel_console_exporter_dst: str | None = None
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    lithops_config_text: str | None = None
    run_uid: str | None = None
    """What makes this invocation *this* one: its processes are marked with it and its
    Batch job id derives from it. Default: ``workflow_run_id``. The operator passes
    the WorkflowRun's ``metadata.uid``, so two runs told the same run id stay apart."""

    @classmethod
    def from_seed(
        cls,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        otel_exporter: str | None,
        otel_console_exporter_dst: str | None,
        extra_env: Mapping[str, str] | None,
        lithops_config_text: str | None,
        options: dict[str, Any],
    ) -> Invocation:
        """From the seed's ``run()`` arguments; pops ``run_uid`` out of its ``**kwargs``."""
        return cls(
            workflow_run_id=workflow_run_id,
            config_text=config_text,
            results_url=results_url,
            execution_mode=execution_mode,
            mock_io=mock_io,
            otel_exporter=otel_exporter,
            otel_console_exporter_dst=otel_console_exporter_dst,
            extra_env=dict(extra_env or {}),
            lithops_config_text=lithops_config_text,
            run_uid=options.pop("run_uid", None),
        )

    @property
    def identity(self) -> str:
        """``run_uid`` when given, else ``workflow_run_id``."""
        return self.run_uid or self.workflow_run_id

    def validate(self) -> Any:
        """Reject what no workflow could run with; returns the parsed config."""
        if not self.workflow_run_id:
            raise InvokerConfigurationError("workflow_run_id must not be empty")
        if not self.execution_mode:
            raise InvokerConfigurationError("execution_mode must not be empty")
        for name, value in self.extra_env.items():
            if not name or "=" in name or "\0" in name:
                raise InvokerConfigurationError(f"invalid environment variable name {name!r}")
            if "\0" in value:
                raise InvokerConfigurationError(f"environment variable {name} holds a NUL byte")
        return parse_yaml("config_text", self.config_text)


def parse_yaml(what: str, text: str) -> Any:
    """Parse YAML safely (C loader when available); ``{}`` for an empty document."""
    try:
        value = yaml.load(text, Loader=_SafeLoader)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        raise InvokerConfigurationError(f"{what} is not valid YAML: {exc}") from exc
    return {} if value is None else value


def compact_json(value: Any) -> str:
    """JSON without spaces (YAML dates become ISO text, sets sorted lists)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InvokerConfigurationError(f"configuration cannot be sent as JSON: {exc}") from exc


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def workflow_args(invocation: Invocation, config_args: list[str]) -> list[str]:
    """The arguments after the executable: ``run <config_args> --execution-mode …``.

    ``config_args`` is ``["--config-file", PATH]`` (local) or ``["--config-json", TEXT]``.
    """
    args = [
        "run",
        *config_args,
        "--execution-mode",
        invocation.execution_mode,
        "--mock-io" if invocation.mock_io else "--no-mock-io",
    ]
    if invocation.otel_exporter is not None:
        args += ["--otel-exporter", invocation.otel_exporter]
    if invocation.otel_console_exporter_dst is not None:
        args += ["--otel-console-exporter-dst", invocation.otel_console_exporter_dst]
    return args


def warn_unknown_options(invoker: str, options: Mapping[str, Any]) -> None:
    """Log a WARNING, once per invoker class and name, for keywords nobody uses.

    ``run(**kwargs)`` stays tolerant (one call for any invoker), but a typo must
    not pass silently.
    """
    for name in sorted(options):
        if (invoker, name) not in _warned:
            _warned.add((invoker, name))
            logger.warning("%s.run() ignores the unknown option %r", invoker, name)

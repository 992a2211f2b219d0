"""Environment variable names a run author may not set through ``spec.env``.

Exists because a Local run executes inside the operator's container: a variable
that a dynamic loader, shell or interpreter reads as code (``LD_PRELOAD``,
``BASH_ENV``, ``PYTHONSTARTUP``…) or as a code search path (``PATH``,
``PYTHONPATH``, ``NODE_PATH``…) would turn "run the admin-installed workflow with
my parameters" into "run my code with the operator's credentials". The same
list guards CloudBatch runs (the admin's image, the admin's service account).

One list, two enforcers: ``hack/gen_crd.py`` compiles it into the CRD's CEL
rule (refused at ``kubectl apply``) and the operator checks it again for
objects stored before the rule existed (reason ``InvalidSpec``).
"""

from __future__ import annotations

from wt_invokers.cloud_batch import LITHOPS_CONFIG_JSON_ENV_VAR
from wt_invokers.local import LITHOPS_CONFIG_ENV_VAR
from wt_operator.api import OTLP_ENDPOINT_ENV_VAR, TRACEPARENT_ENV_VAR

__all__ = ["RESERVED_NAMES", "RESERVED_PREFIXES", "cel_rule", "reserved_reason"]

RESERVED_PREFIXES: tuple[str, ...] = (
    "LD_",  # glibc's loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, …
    "DYLD_",  # the macOS loader, for images built there
    "PYTHON",  # PYTHONPATH, PYTHONSTARTUP, PYTHONWARNINGS (imports modules), PYTHONHOME, …
    "PERL",  # PERL5OPT, PERL5LIB, PERLLIB, PERL5DB
    "RUBY",  # RUBYOPT, RUBYLIB
    "_JAVA_",  # _JAVA_OPTIONS
    "JDK_",  # JDK_JAVA_OPTIONS
    "LUA_",  # LUA_INIT (code), LUA_PATH, LUA_CPATH
    "GIT_",  # GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*
    "BASH_FUNC_",  # exported shell functions
    "OPENSSL_",  # OPENSSL_CONF can load engines (shared objects)
    "PIXI_",  # the launcher's own settings
    "CONDA_",  # the environment being activated
    "MAMBA_",
    "WT_",  # the library's and operator's settings, the run marker, the results variable
)
"""A name starting with one of these is refused."""

RESERVED_NAMES: frozenset[str] = frozenset(
    {
        # shells
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "SHELL",
        # tools that start other programs
        "BROWSER",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "SSH_ASKPASS",
        # interpreters whose families also have harmless settings (NODE_ENV, R_HOME…)
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "JAVA_OPTIONS",
        "JAVA_HOME",
        "R_PROFILE",
        "R_PROFILE_USER",
        "R_ENVIRON",
        "R_ENVIRON_USER",
        "R_LIBS",
        "R_LIBS_USER",
        "R_LIBS_SITE",
        "JULIA_LOAD_PATH",
        "JULIA_DEPOT_PATH",
        "JULIA_PROJECT",
        # search paths and the loader's data
        "PATH",
        "HOME",
        "CLASSPATH",
        "TCLLIBPATH",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        # credentials files that may name a program to run (exec plugins,
        # executable-sourced external accounts)
        "KUBECONFIG",
        "GOOGLE_APPLICATION_CREDENTIALS",
        # what the invokers set for the workflow
        LITHOPS_CONFIG_ENV_VAR,
        LITHOPS_CONFIG_JSON_ENV_VAR,
        TRACEPARENT_ENV_VAR,
        "TRACESTATE",  # belongs with the traceparent
        OTLP_ENDPOINT_ENV_VAR,
    }
)
"""Names refused exactly."""


def reserved_reason(name: str, *, results_env_var: str | None = None) -> str | None:
    """Why ``name`` may not be set by a run author, or None when it may.

    ``results_env_var`` is the operator's results variable (configurable, so it
    cannot be part of the CRD rule unless it starts with ``WT_``).
    """
    if name in RESERVED_NAMES:
        return f"{name} is reserved (it can make the workflow's environment run other code)"
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"{name} is reserved (names starting with {prefix} are refused)"
    if results_env_var and name == results_env_var:
        return f"{name} is reserved (it carries the run's resultsUrl)"
    return None


def cel_rule() -> dict[str, str]:
    """The CRD validation rule (on one ``spec.env`` item) refusing the names above."""
    names = ", ".join(f"'{n}'" for n in sorted(RESERVED_NAMES))
    prefixes = ", ".join(f"'{p}'" for p in RESERVED_PREFIXES)
    return {
        "rule": f"!(self.name in [{names}]) && ![{prefixes}].exists(p, self.name.startsWith(p))",
        "messageExpression": "'env name ' + self.name + ' is reserved: loaders, shells and "
        "interpreters read it as code or as a code search path, or the operator sets it "
        "itself (see the README, Security)'",
        "reason": "FieldValueForbidden",
    }

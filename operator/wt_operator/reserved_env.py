"""Environment variable names a run author may not set through ``spec.env``.

Exists because a Local run executes inside the operator's container: a variable
that a dynamic loader, shell or interpreter reads as code (``LD_PRELOAD``,
``BASH_ENV``, ``PYTHONSTARTUP``…) or as a code search path (``PATH``,
``PYTHONPATH``, ``NODE_PATH``…) would turn "run the admin-installed workflow with
my parameters" into "run my code with the operator's credentials". The same
list guards CloudBatch runs (the admin's image, the admin's service account).

It also covers what *redirects* a program rather than runs code: proxies, TLS
trust stores, cloud SDK and metadata settings, telemetry export, temp and XDG
directories. With a CA bundle and a proxy of their own, an author would receive
the workflow's uploads and the Google token sent with them. Names are compared
case-insensitively (``https_proxy`` is read by curl and Python alike). Any such
list stays one family short, so the admin can switch to a true allow-list
(``operator.allowedEnv``, :func:`wt_operator.core.spec.env_name_problem`).

One list, two enforcers: ``hack/gen_crd.py`` compiles it into the CRD's CEL
rule (refused at ``kubectl apply``) and the operator checks it again for
objects stored before the rule existed (reason ``InvalidSpec``).
"""

from __future__ import annotations

from wt_invokers.cloud_batch import LITHOPS_CONFIG_JSON_ENV_VAR
from wt_invokers.local import LITHOPS_CONFIG_ENV_VAR
from wt_operator.api import OTLP_ENDPOINT_ENV_VAR, TRACEPARENT_ENV_VAR

__all__ = [
    "ENV_NAME_PATTERN",
    "RESERVED_NAMES",
    "RESERVED_PREFIXES",
    "RESERVED_SUFFIXES",
    "cel_rule",
    "reserved_reason",
]

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""What a variable a run author sets may be called: a portable shell name (no ``.``, ``-``
or ``=``, which some programs split or drop and others read)."""

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
    # what redirects a program: TLS trust, cloud SDK and metadata, telemetry, directories
    "SSL_",  # SSL_CERT_FILE, SSL_CERT_DIR: the trust store of OpenSSL and Python
    "CURL_CA_",  # CURL_CA_BUNDLE
    "CLOUDSDK_",  # gcloud's settings: endpoints, proxy, credentials
    "GCE_METADATA_",  # GCE_METADATA_HOST, GCE_METADATA_IP: where Google libraries get tokens
    "GOOGLE_",  # GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CLOUD_PROJECT, API endpoint overrides
    "OTEL_",  # where traces, metrics and logs (with their headers) are exported
    "XDG_",  # XDG_CONFIG_HOME etc.: where programs read their configuration
    "KUBERNETES_",  # the API server's address in a pod
    "AWS_",  # AWS_CA_BUNDLE, AWS_ENDPOINT_URL, credentials
    "AZURE_",
)
"""A name starting with one of these (any case) is refused."""

RESERVED_SUFFIXES: tuple[str, ...] = (
    "_PROXY",  # HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, GRPC_PROXY, FTP_PROXY, …
    "_CA_BUNDLE",  # REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, …
    "_CA_CERTS",  # NODE_EXTRA_CA_CERTS, …
)
"""A name ending with one of these (any case) is refused."""

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
        # redirecting single names
        "NO_PROXY",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "SSLKEYLOGFILE",  # would write every TLS session key to a file the author names
        "TMPDIR",
        "TMP",
        "TEMP",
        "LANG",  # chosen by the operator, with TZ, for every workflow
        "TZ",
        "BOTO_CONFIG",
        "NETRC",
        "CURL_HOME",
        "WGETRC",
        "PIP_CONFIG_FILE",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
    }
)
"""Names refused exactly (any case)."""


def reserved_reason(name: str, *, results_env_var: str | None = None) -> str | None:
    """Why ``name`` may not be set by a run author, or None when it may.

    ``results_env_var`` is the operator's results variable (configurable, so it
    cannot be part of the CRD rule unless it starts with ``WT_``).
    """
    upper = name.upper()
    if upper in RESERVED_NAMES:
        return f"{name} is reserved (it can make the workflow run other code or reach elsewhere)"
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            return f"{name} is reserved (names starting with {prefix} are refused, in any case)"
    for suffix in RESERVED_SUFFIXES:
        if upper.endswith(suffix):
            return f"{name} is reserved (names ending with {suffix} are refused, in any case)"
    if results_env_var and upper == results_env_var.upper():
        return f"{name} is reserved (it carries the run's resultsUrl)"
    return None


def cel_rule() -> dict[str, str]:
    """The CRD validation rule (on one ``spec.env`` item) refusing the names above.

    ``upperAscii()`` makes the comparison case-blind, as :func:`reserved_reason` is; the
    name's own pattern already limits it to ASCII.
    """
    names = ", ".join(f"'{n}'" for n in sorted(RESERVED_NAMES))
    prefixes = ", ".join(f"'{p}'" for p in RESERVED_PREFIXES)
    suffixes = ", ".join(f"'{p}'" for p in RESERVED_SUFFIXES)
    return {
        "rule": f"!(self.name.upperAscii() in [{names}]) && "
        f"![{prefixes}].exists(p, self.name.upperAscii().startsWith(p)) && "
        f"![{suffixes}].exists(p, self.name.upperAscii().endsWith(p))",
        "messageExpression": "'env name ' + self.name + ' is reserved: loaders, shells and "
        "interpreters read it as code or a code search path, it redirects the workflow "
        "(proxies, TLS trust, cloud and telemetry settings), or the operator sets it "
        "itself (see the README, Security)'",
        "reason": "FieldValueForbidden",
    }

"""A real, offline-built sample workflow package and the tools to run it in tests.

Exists so that invoker tests, the operator's tests, benchmarks and demos run a
*real* conda package in a *real* environment — built with rattler-build, indexed
into a local channel, solved and linked with py-rattler — without any network
channel. The package (``wt-sample-workflow`` by default) is ``noarch: generic``
with no dependencies: its executable is a POSIX ``/bin/sh`` script, using only
``sh``, ``sed``, ``awk``, ``sleep``, ``yes``, ``head``, ``tr``, ``cat`` of the host.
Modules: ``package`` (building it), ``workspace`` (channel and environments),
``sample`` (its config and echo file), ``pixi`` (the pixi stand-in).

Typical use::

    ws = await make_workspace_async(tmp_path / "ws")     # <ws>/.pixi/envs/default
    inv = LocalSubprocessInvoker("wt-sample-workflow", cwd=ws, launcher="prefix")
    await inv.run("run-1", workflow_config(exit_code=3, echo_file=tmp_path / "echo"), ...)
    assert await inv.wait() == 3
    echo = read_echo_file(tmp_path / "echo")             # argv, env, cwd the workflow saw

The sample workflow's command line::

    <name> run --config-file F --execution-mode M --mock-io|--no-mock-io
               [--otel-exporter X] [--otel-console-exporter-dst Y]
    <name> --version            prints "<name> <version>"
    <name> echo-stdin           copies stdin to stdout
    <name> fail [CODE [MSG]]    prints MSG to stderr, exits CODE (default 3)

``run`` reads flat ``key: value`` lines from its config file (see
:func:`workflow_config`) and acts them out in this order:

==========================  =====================================================
``echo_file: PATH``         write what it saw (see :func:`read_echo_file`) first,
                            atomically; copies the config (and lithops config)
                            beside it as ``PATH.config`` / ``PATH.lithops``
``ignore_term: true``       ignore SIGTERM (tests SIGKILL escalation)
``grandchild_sleep: S``     start ``sleep S`` in the background (a grandchild of
                            the invoker); ``grandchild_pid_file: PATH`` gets its pid
``grandchild_ignore_term``  ``true``: that grandchild ignores SIGTERM
``grandchild_setsid``       ``true``: it leaves the process group (``setsid``)
``grandchild_holds_output`` ``true``: it keeps the workflow's stdout/stderr open
``append_to: PATH``         append ``tag`` (default ``ran``) as a line to PATH:
                            counts executions across operator restarts
``print_env: VAR``          print ``VAR=<value>`` on stdout (masking tests);
                            ``pad_env: N`` puts N dots before it and 2N after it
                            on the same line (a line the reader cuts)
``long_lines: N``           print N lines of 65,000 characters (``k0000-12`` repeated)
``try_read: P1,P2,…``       print ``READ P``, ``EMPTY P`` (nothing in it) or
                            ``DENIED P`` (absent, unreadable) for each path
``scan_environ: TEXT``      print ``FOUND /proc/N/environ`` for each readable
                            process environment holding TEXT, then ``SCANNED n``
``stdout_lines: N``         print ``stdout line 1`` … ``stdout line N``
``stderr_lines: N``         same on stderr (``stderr line i``)
``stdout_bytes: N``         print N bytes as 100-byte lines (``stderr_bytes`` too)
``result_file: NAME``       write ``result_text`` (default ``ok``) to NAME in the
                            results directory taken from ``$WT_RESULTS`` (or the
                            variable named by ``results_env_var``); ``file://``
                            URLs are percent-decoded
``sleep: S``                sleep S seconds (fractions allowed)
``kill_self: SIG``          send itself SIG (e.g. ``TERM``): death by signal
``exit_code: N``            exit with N (default 0)
==========================  =====================================================
"""

from wt_testkit.workflows.package import (
    SAMPLE_WORKFLOW,
    SAMPLE_WORKFLOW_VERSION,
    WorkflowPackage,
    build_workflow_package,
)
from wt_testkit.workflows.pixi import write_pixi_standin
from wt_testkit.workflows.pixipack import build_pixi_pack_archive
from wt_testkit.workflows.sample import (
    ConfigValue,
    WorkflowEcho,
    process_is_alive,
    read_echo_file,
    wait_for_path,
    wait_process_gone,
    workflow_config,
)
from wt_testkit.workflows.workspace import (
    environment_prefix,
    install_packages,
    local_channel,
    make_workspace,
    make_workspace_async,
    workflow_executable,
)

__all__ = [
    "SAMPLE_WORKFLOW",
    "SAMPLE_WORKFLOW_VERSION",
    "ConfigValue",
    "WorkflowEcho",
    "WorkflowPackage",
    "build_pixi_pack_archive",
    "build_workflow_package",
    "environment_prefix",
    "install_packages",
    "local_channel",
    "make_workspace",
    "make_workspace_async",
    "process_is_alive",
    "read_echo_file",
    "wait_for_path",
    "wait_process_gone",
    "workflow_config",
    "workflow_executable",
    "write_pixi_standin",
]

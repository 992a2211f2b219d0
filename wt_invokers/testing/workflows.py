"""A real, offline-built sample workflow package and the tools to run it in tests.

Exists so that invoker tests, the operator's tests, benchmarks and demos run a
*real* conda package in a *real* environment — built with rattler-build, indexed
into a local channel, solved and linked with py-rattler — without any network
channel. The package (``wt-sample-workflow`` by default) is ``noarch: generic``
with no dependencies: its executable is a POSIX ``/bin/sh`` script, using only
``sh``, ``sed``, ``awk``, ``sleep``, ``yes``, ``head``, ``cat`` of the host.

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
``print_env: VAR``          print ``VAR=<value>`` on stdout (masking tests)
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

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wt_invokers._process import pid_is_alive

__all__ = [
    "SAMPLE_WORKFLOW",
    "SAMPLE_WORKFLOW_VERSION",
    "ConfigValue",
    "WorkflowEcho",
    "WorkflowPackage",
    "build_workflow_package",
    "install_packages",
    "local_channel",
    "make_workspace",
    "make_workspace_async",
    "process_is_alive",
    "read_echo_file",
    "wait_for_path",
    "workflow_config",
    "write_pixi_standin",
]

SAMPLE_WORKFLOW = "wt-sample-workflow"
"""Name (and executable) of the default sample workflow package."""

SAMPLE_WORKFLOW_VERSION = "1.2.0"
"""Its default version; build others with ``WorkflowPackage(name, version)``."""

process_is_alive = pid_is_alive
"""``process_is_alive(pid)``: whether a pid exists and is not a zombie (for tree-kill asserts)."""

_T = TypeVar("_T")


@dataclass(frozen=True, order=True)
class WorkflowPackage:
    """One sample workflow package: its conda name (= executable) and version."""

    name: str = SAMPLE_WORKFLOW
    version: str = SAMPLE_WORKFLOW_VERSION

    @classmethod
    def parse(cls, text: str | WorkflowPackage) -> WorkflowPackage:
        """``"name"``, ``"name==1.0"`` or ``"name=1.0"`` (the default version when omitted)."""
        if isinstance(text, WorkflowPackage):
            return text
        name, _, version = text.replace("==", "=").partition("=")
        return cls(name.strip(), version.strip() or SAMPLE_WORKFLOW_VERSION)


# -- the workflow script ---------------------------------------------------------------

_LINE_99 = "x" * 99

_SCRIPT = r"""#!/bin/sh
# Sample wt workflow __NAME__ __VERSION__ (built by wt_invokers.testing.workflows).
# A test double: what it does is driven by its --config-file, see that module.
NAME='__NAME__'
VERSION='__VERSION__'

case "${1:-}" in
  --version) echo "$NAME $VERSION"; exit 0 ;;
  echo-stdin) cat; exit 0 ;;
  fail) echo "${3:-failing on purpose}" >&2; exit "${2:-3}" ;;
  run) ;;
  *) echo "usage: $NAME run --config-file F --execution-mode M --mock-io|--no-mock-io" \
          "[--otel-exporter X] [--otel-console-exporter-dst Y]" >&2
     exit 2 ;;
esac

config_file=
prev=
for a in "$@"; do
  [ "$prev" = --config-file ] && config_file=$a
  prev=$a
done
[ -n "$config_file" ] || { echo "$NAME: --config-file is required" >&2; exit 2; }
[ -r "$config_file" ] || { echo "$NAME: cannot read config file $config_file" >&2; exit 2; }

cfg() {
  sed -n "s/^$1:[[:space:]]*//p" "$config_file" | head -n 1 \
    | sed 's/[[:space:]]*$//; s/^"\(.*\)"$/\1/'
}

echo_file=$(cfg echo_file)
if [ -n "$echo_file" ]; then
  {
    printf 'name %s\n' "$NAME"
    printf 'version %s\n' "$VERSION"
    for a in "$@"; do printf 'argv %s\n' "$a"; done
    printf 'cwd %s\n' "$(pwd)"
    printf 'pid %s\n' "$$"
    printf 'config_mode %s\n' "$(stat -c %a "$config_file")"
    env | sed 's/^/env /'
  } > "$echo_file.tmp"
  cp "$config_file" "$echo_file.config"
  if [ -n "${LITHOPS_CONFIG_FILE:-}" ]; then
    cp "$LITHOPS_CONFIG_FILE" "$echo_file.lithops"
    printf 'lithops_mode %s\n' "$(stat -c %a "$LITHOPS_CONFIG_FILE")" >> "$echo_file.tmp"
  fi
  mv "$echo_file.tmp" "$echo_file"
fi

shift
mode=
mock=
while [ $# -gt 0 ]; do
  case "$1" in
    --config-file|--execution-mode|--otel-exporter|--otel-console-exporter-dst)
      [ $# -ge 2 ] || { echo "$NAME: $1 needs a value" >&2; exit 2; }
      [ "$1" = --execution-mode ] && mode=$2
      shift 2 ;;
    --mock-io|--no-mock-io) mock=$1; shift ;;
    *) echo "$NAME: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$mode" ] || { echo "$NAME: --execution-mode is required" >&2; exit 2; }
[ -n "$mock" ] || { echo "$NAME: --mock-io or --no-mock-io is required" >&2; exit 2; }

[ "$(cfg ignore_term)" = true ] && trap '' TERM

gsleep=$(cfg grandchild_sleep)
if [ -n "$gsleep" ]; then
  if [ "$(cfg grandchild_holds_output)" = true ]; then
    sleep "$gsleep" </dev/null &
  elif [ "$(cfg grandchild_setsid)" = true ]; then
    setsid sleep "$gsleep" </dev/null >/dev/null 2>&1 &
  elif [ "$(cfg grandchild_ignore_term)" = true ]; then
    ( trap '' TERM; exec sleep "$gsleep" ) </dev/null >/dev/null 2>&1 &
  else
    sleep "$gsleep" </dev/null >/dev/null 2>&1 &
  fi
  gpid=$!
  pid_file=$(cfg grandchild_pid_file)
  [ -n "$pid_file" ] && { echo "$gpid" > "$pid_file.tmp"; mv "$pid_file.tmp" "$pid_file"; }
fi

append_to=$(cfg append_to)
[ -n "$append_to" ] && { t=$(cfg tag); printf '%s\n' "${t:-ran}" >> "$append_to"; }
var=$(cfg print_env)
[ -n "$var" ] && eval "printf '%s=%s\\n' \"\$var\" \"\${$var:-}\""

n=$(cfg stdout_lines)
[ -n "$n" ] && awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "stdout line " i }'
n=$(cfg stderr_lines)
[ -n "$n" ] && awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "stderr line " i }' >&2
n=$(cfg stdout_bytes)
[ -n "$n" ] && yes '__LINE99__' | head -c "$n"
n=$(cfg stderr_bytes)
[ -n "$n" ] && yes '__LINE99__' | head -c "$n" >&2

result=$(cfg result_file)
if [ -n "$result" ]; then
  var=$(cfg results_env_var)
  var=${var:-WT_RESULTS}
  eval "url=\${$var:-}"
  [ -n "$url" ] || { echo "$NAME: \$$var is not set" >&2; exit 3; }
  case "$url" in
    file://*)
      p=${url#file://}
      p=${p#localhost}
      dir=$(printf '%s\n' "$p" | awk 'BEGIN { hex = "0123456789abcdef" } {
        s = $0; out = ""
        while ((i = index(s, "%")) > 0) {
          h = tolower(substr(s, i + 1, 2))
          c = (index(hex, substr(h, 1, 1)) - 1) * 16 + index(hex, substr(h, 2, 1)) - 1
          out = out substr(s, 1, i - 1) sprintf("%c", c)
          s = substr(s, i + 3)
        }
        print out s }') ;;
    /*) dir=$url ;;
    *) echo "$NAME: unsupported results URL $url" >&2; exit 3 ;;
  esac
  text=$(cfg result_text)
  printf '%s\n' "${text:-ok}" > "$dir/$result" || exit 3
fi

s=$(cfg sleep)
[ -n "$s" ] && sleep "$s"

sig=$(cfg kill_self)
[ -n "$sig" ] && kill -s "$sig" $$

code=$(cfg exit_code)
exit "${code:-0}"
"""


def _script(package: WorkflowPackage) -> str:
    return (
        _SCRIPT.replace("__NAME__", package.name)
        .replace("__VERSION__", package.version)
        .replace("__LINE99__", _LINE_99)
    )


def build_workflow_package(
    output_dir: str | os.PathLike[str], package: WorkflowPackage | str = WorkflowPackage()
) -> Path:
    """Build one sample workflow ``.conda`` into ``output_dir`` (a channel's ``noarch/``).

    Uses rattler-build's ``assemble_package``: no recipe, no build environment, no
    network — the package is one shell script, so there is nothing to compile.
    """
    import rattler_build  # a test extra; keep importing this module cheap without it

    pkg = WorkflowPackage.parse(package)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wt-sample-stage-") as stage:
        exe = Path(stage) / "bin" / pkg.name
        exe.parent.mkdir()
        exe.write_text(_script(pkg))
        exe.chmod(0o755)
        result = rattler_build.assemble_package(
            name=pkg.name,
            version=pkg.version,
            target_platform="noarch",
            build_string="0",
            output_dir=out,
            files_dir=stage,
            noarch="generic",
            summary=f"wt sample workflow {pkg.version} (test double)",
            license="Apache-2.0",
            compression_level=1,
        )
    return Path(result.path).absolute()


# -- the per-process local channel ---------------------------------------------------------

_lock = threading.Lock()
_channel_root: Path | None = None
_built: set[WorkflowPackage] = set()


def _root() -> Path:
    global _channel_root
    if _channel_root is None:
        _channel_root = Path(tempfile.mkdtemp(prefix="wt-sample-channel-"))
        atexit.register(shutil.rmtree, _channel_root, True)
    return _channel_root


def _run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even if this thread runs an event loop."""
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="wt-sample-workflows")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def local_channel(packages: Iterable[WorkflowPackage | str] = (WorkflowPackage(),)) -> Path:
    """The directory of this process's local channel, holding at least ``packages``.

    Built once per process (in a temp dir removed at exit) and extended on demand;
    each package is built only once. Thread-safe; blocking.
    """
    wanted = {WorkflowPackage.parse(p) for p in packages}
    with _lock:
        channel = _root() / "channel"
        missing = sorted(wanted - _built)
        if missing:
            for pkg in missing:
                build_workflow_package(channel / "noarch", pkg)
            from rattler.index import index_fs

            _run_coroutine(index_fs(channel, force=True))
            _built.update(missing)
    return channel


async def install_packages(
    prefix: str | os.PathLike[str], packages: Sequence[WorkflowPackage | str]
) -> list[str]:
    """Create (or update) the conda environment ``prefix`` with exactly ``packages``.

    Solves against the local channel only (no virtual packages, no network) and
    links with a package cache private to this process, so a package rebuilt
    with the same name and version never comes from a stale global cache.
    Returns the installed ``name-version-build`` strings.
    """
    import rattler

    pkgs = [WorkflowPackage.parse(p) for p in packages]
    channel = await asyncio.to_thread(local_channel, pkgs)
    gateway = rattler.Gateway(cache_dir=_root() / "repodata-cache")
    records = await rattler.solve(
        [rattler.Channel(channel.as_uri())],
        [f"{p.name} =={p.version}" for p in pkgs],
        gateway=gateway,
        platforms=[rattler.Subdir.current(), rattler.Subdir("noarch")],
        virtual_packages=[],
        channel_relations="disabled",
    )
    await rattler.install(
        records,
        target_prefix=Path(prefix),
        cache_dir=_root() / "pkgs",
        show_progress=False,
        execute_link_scripts=False,
    )
    return sorted(f"{r.name.normalized}-{r.version}-{r.build}" for r in records)


async def make_workspace_async(
    path: str | os.PathLike[str],
    *,
    packages: Sequence[WorkflowPackage | str] = (WorkflowPackage(),),
    environment: str = "default",
) -> Path:
    """Make ``path`` a workspace whose ``.pixi/envs/<environment>`` holds ``packages``.

    What ``pixi install`` would leave behind, minus the manifest: the real pixi
    cannot run here, and the invokers only need the installed environment.
    Returns the absolute workspace path.
    """
    ws = await asyncio.to_thread(Path(path).absolute)
    await install_packages(ws / ".pixi" / "envs" / environment, packages)
    return ws


def make_workspace(
    path: str | os.PathLike[str],
    *,
    packages: Sequence[WorkflowPackage | str] = (WorkflowPackage(),),
    environment: str = "default",
) -> Path:
    """Blocking :func:`make_workspace_async`, usable from sync code and sync fixtures."""
    return _run_coroutine(make_workspace_async(path, packages=packages, environment=environment))


# -- configuring and observing the workflow ------------------------------------------------


ConfigValue = str | int | float | bool | os.PathLike[str] | None
"""What :func:`workflow_config` accepts as a setting's value."""


def workflow_config(**settings: ConfigValue) -> str:
    """The sample workflow's config text: one ``key: value`` line per setting (None skipped).

    Values are double-quoted YAML strings so paths with spaces or colons survive;
    they must not contain ``"``, ``\\`` or newlines (the sh parser is deliberately tiny).
    """
    lines = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = str(value)
        else:
            raw = os.fspath(value)
            if any(c in raw for c in '"\\\n'):
                raise ValueError(f"{key}: value {raw!r} has a quote, backslash or newline")
            text = f'"{raw}"'
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WorkflowEcho:
    """What a sample workflow run saw, read back from its ``echo_file``."""

    name: str
    version: str
    argv: list[str]
    """Arguments after the executable (``run --config-file … ``)."""
    cwd: str
    pid: int
    config_mode: str
    """Octal permission bits of the config file, e.g. ``"600"``."""
    env: dict[str, str]
    config_text: str
    lithops_config_text: str | None = None
    lithops_mode: str | None = None

    def option(self, flag: str) -> str | None:
        """The value after ``flag`` in argv (None when absent)."""
        if flag in self.argv:
            i = self.argv.index(flag)
            return self.argv[i + 1] if i + 1 < len(self.argv) else None
        return None


_ECHO_FIELDS = frozenset({"name", "version", "cwd", "pid", "config_mode", "lithops_mode"})


def read_echo_file(path: str | os.PathLike[str]) -> WorkflowEcho:
    """Parse the file a sample workflow writes for ``echo_file`` (and its siblings)."""
    p = Path(path)
    argv: list[str] = []
    env: dict[str, str] = {}
    fields: dict[str, str] = {}
    last_env: str | None = None
    for line in p.read_text().split("\n")[:-1]:
        tag, _, value = line.partition(" ")
        if tag == "argv":
            argv.append(value)
        elif tag == "env" and "=" in value:
            key, _, val = value.partition("=")
            env[key] = val
            last_env = key
        elif tag in _ECHO_FIELDS:
            fields[tag] = value
        elif last_env is not None:  # `env` prints multi-line values over several lines
            env[last_env] += "\n" + line
    lithops = Path(f"{p}.lithops")
    return WorkflowEcho(
        name=fields.get("name", ""),
        version=fields.get("version", ""),
        argv=argv,
        cwd=fields.get("cwd", ""),
        pid=int(fields.get("pid", "0")),
        config_mode=fields.get("config_mode", ""),
        env=env,
        config_text=Path(f"{p}.config").read_text(),
        lithops_config_text=lithops.read_text() if lithops.exists() else None,
        lithops_mode=fields.get("lithops_mode"),
    )


async def wait_for_path(path: str | os.PathLike[str], timeout: float = 10.0) -> Path:
    """Wait (polling, without blocking the loop) until ``path`` exists; TimeoutError if not."""
    p = Path(path)
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(p.exists):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{p} did not appear within {timeout} s")
        await asyncio.sleep(0.01)
    return p


# -- the pixi stand-in -------------------------------------------------------------------------

_PIXI_STANDIN = '''#!__PYTHON__
"""STAND-IN for the real `pixi` binary -- NOT pixi.

The real pixi cannot be installed here (no network channels), so tests put this
script on PATH under the name `pixi`. It implements only what the invokers use,
faithfully: `pixi run [-e|--environment ENV] CMD [ARGS...]` finds the workspace
(the current directory or the nearest parent holding `.pixi/envs`), activates
`<workspace>/.pixi/envs/<ENV>` with py-rattler (as pixi does: PATH, CONDA_PREFIX,
activate.d scripts) and replaces itself with CMD. Anything else exits 2.
"""
import os
import sys
from pathlib import Path

USAGE = "usage: pixi run [--frozen] [-e ENV] CMD [ARGS...] (wt-invokers pixi STAND-IN)"


def workspace(start):
    for folder in (start, *start.parents):
        if (folder / ".pixi" / "envs").is_dir():
            return folder
    return None


def main(argv):
    if argv[:1] in (["--version"], ["-V"]):
        print("pixi 0.0.0 (wt-invokers stand-in)")
        return 0
    if argv[:1] != ["run"]:
        cmd = argv[0] if argv else "(none)"
        print(f"pixi stand-in: unsupported command {cmd!r}; {USAGE}", file=sys.stderr)
        return 2
    args = argv[1:]
    env_name = "default"
    while args and args[0].startswith("-"):
        if args[0] in ("-e", "--environment") and len(args) >= 2:
            env_name, args = args[1], args[2:]
        elif args[0].startswith("--environment="):
            env_name, args = args[0].partition("=")[2], args[1:]
        elif args[0] in ("--frozen", "--locked"):
            args = args[1:]  # the lock file is used as it is: nothing to do here
        elif args[0] == "--":
            args = args[1:]
            break
        else:
            print(f"pixi stand-in: unsupported option {args[0]!r}; {USAGE}", file=sys.stderr)
            return 2
    if not args:
        print(f"pixi stand-in: no command given; {USAGE}", file=sys.stderr)
        return 2
    ws = workspace(Path.cwd())
    if ws is None:
        print(f"pixi stand-in: no workspace (.pixi/envs) at or above {Path.cwd()}", file=sys.stderr)
        return 1
    prefix = ws / ".pixi" / "envs" / env_name
    if not (prefix / "conda-meta").is_dir():
        print(f"pixi stand-in: environment {env_name!r} is not installed in {ws}", file=sys.stderr)
        return 1
    from wt_invokers._activation import compute_activation

    env = compute_activation(prefix).apply(os.environ)
    sys.stdout.flush()
    try:
        os.execvpe(args[0], args, env)
    except FileNotFoundError:
        print(f"pixi: command not found: {args[0]}", file=sys.stderr)
        return 127
    except PermissionError as exc:
        print(f"pixi: cannot execute {args[0]}: {exc.strerror}", file=sys.stderr)
        return 126


sys.exit(main(sys.argv[1:]))
'''


def write_pixi_standin(bin_dir: str | os.PathLike[str], python: str | None = None) -> Path:
    """Write ``<bin_dir>/pixi``: a STAND-IN for the real pixi binary, which cannot run here.

    It implements ``pixi run [-e ENV] CMD…`` faithfully (workspace lookup, rattler
    activation of ``.pixi/envs/<ENV>``, exec of CMD) and nothing else (exit 2).
    Put ``bin_dir`` first on ``PATH`` to make ``LocalSubprocessInvoker(launcher="pixi")``
    use it. ``python`` (default: this interpreter) must be able to import ``wt_invokers``.
    """
    if "\n" in (python or "") or " " in (python or sys.executable):
        raise ValueError("the interpreter path must not contain spaces (shebang limit)")
    out = Path(bin_dir) / "pixi"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_PIXI_STANDIN.replace("__PYTHON__", python or sys.executable))
    out.chmod(out.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return out

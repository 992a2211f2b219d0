"""A STAND-IN for the ``pixi`` binary, written onto PATH for tests (NOT pixi).

Exists because the real pixi cannot be installed here (no network channels), yet
``LocalSubprocessInvoker(launcher="pixi")`` and the operator run workflows through
``pixi run``. The stand-in implements only what they use, faithfully: workspace
lookup, activation of ``.pixi/envs/<ENV>`` with the library's own py-rattler
activation, and exec of the command. Anything else exits 2.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

__all__ = ["write_pixi_standin"]

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
    from wt_invokers.activation import compute_activation

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

"""The library's process tools, public: what a host that runs workflows itself needs.

A workflow started by :class:`~wt_invokers.LocalSubprocessInvoker` runs in a session of
its own and carries a marker in its environment, so its whole tree can be found and
killed even after the process that started it died. An operator, a separate runner
process or a test harness needs the same tools: this module is their one supported way
in (the ``_``-prefixed modules behind it may change without notice).

- finding and killing a tree: :func:`find_marked`, :func:`live_group_members`,
  :func:`terminate`, :func:`kill_stale_processes`, :func:`pid_is_alive`;
- launching one by hand: :func:`results_dir_of`, :func:`make_results_dir`,
  :func:`write_private`, :func:`remove_all`, :func:`start_error`;
- reading its output without blocking it: :class:`OutputReader`.
"""

from __future__ import annotations

from wt_invokers._launch import (
    make_results_dir,
    remove_all,
    results_dir_of,
    start_error,
    write_private,
)
from wt_invokers._output import MAX_LINE_BYTES, LineCallback, OutputReader
from wt_invokers._process import (
    PROCESS_MARKER_ENV_VAR,
    RUN_ID_ENV_VAR,
    find_marked,
    group_exists,
    kill_stale_processes,
    live_group_members,
    pid_is_alive,
    terminate,
)

__all__ = [
    "MAX_LINE_BYTES",
    "PROCESS_MARKER_ENV_VAR",
    "RUN_ID_ENV_VAR",
    "LineCallback",
    "OutputReader",
    "find_marked",
    "group_exists",
    "kill_stale_processes",
    "live_group_members",
    "make_results_dir",
    "pid_is_alive",
    "remove_all",
    "results_dir_of",
    "start_error",
    "terminate",
    "write_private",
]

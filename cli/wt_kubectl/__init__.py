"""``kubectl wt``: submit, wait for, re-run, read the output of and describe WorkflowRuns.

A kubectl plugin (the console script ``kubectl-wt``) for the people who submit
runs rather than operate the operator: it answers "did it work, why not, where
is the output, run it again" without copying YAML by hand. It speaks to the API
server only (never to the operator), through the names in ``wt_operator.api``.

Layout: ``core`` and ``describe`` decide (pure), ``kube`` talks to the cluster,
``follow`` and ``logs`` are the long-running commands, ``cloud_logging`` reads
Batch logs from Google, ``__main__`` is the command line and the one place an
error becomes a line on stderr.
"""

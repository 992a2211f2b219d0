"""The runner: a second process (the chart's second container) that runs Local workflows.

Exists so a workflow never shares a uid, a process namespace, a ServiceAccount token
or an environment with the operator: the operator decides everything about a run
(its argv, environment, working directory, marker) and hands it over a unix socket;
the runner only starts, streams, kills and reports. :mod:`.protocol` is the wire
format both sides speak, :mod:`.server` the runner process (``wt-runner``).
"""

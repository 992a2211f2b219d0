"""The operator's decisions, as pure functions of typed inputs.

Nothing here performs I/O, reads the clock or imports kopf or a Kubernetes
client: each function takes what it decides on (the parsed spec, the last
status, an invoker outcome, a Batch job state, the time) and returns what to do
(a status transition to record, how long to wait, whether to cancel). The shell
(:mod:`wt_operator.shell`) carries the decisions out.
"""

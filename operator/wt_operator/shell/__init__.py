"""The operator's effects: the Kubernetes client, invokers, clocks and the run loops.

Everything here talks to the outside world and asks :mod:`wt_operator.core`
what to do; collaborators are passed in (a ``Kube``, an invoker factory, a
clock), so unit tests drive the same code with in-memory doubles.
"""

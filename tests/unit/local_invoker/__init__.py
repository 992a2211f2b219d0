"""LocalSubprocessInvoker (wt_invokers/local.py), one module per topic; fixtures in conftest.py."""

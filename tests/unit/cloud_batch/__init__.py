"""CloudBatchInvoker (wt_invokers/cloud_batch.py), one module per topic; fixtures in conftest.py."""

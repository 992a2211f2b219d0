"""The Helm chart on the real API server, one module per topic; fixtures in conftest.py."""

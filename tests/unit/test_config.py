"""`config.py`: the operator's settings, read once from the environment and validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from wt_operator.config import ConfigError, OperatorConfig


def test_settings_are_read_once_and_validated(tmp_path: Path) -> None:
    cfg = OperatorConfig.from_env(
        {
            "WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD": str(tmp_path),
            "WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS": "8",
            "GOOGLE_CLOUD_PROJECT": "proj",
            "BATCH_EMULATOR_HOST": "127.0.0.1:1",
        }
    )
    assert cfg.workspace == tmp_path
    assert cfg.max_concurrent_local_runs == 8
    assert cfg.batch_defaults.project == "proj"
    assert cfg.batch_defaults.region == "us-central1"
    assert cfg.batch_emulator_host == "127.0.0.1:1"
    assert cfg.local_launcher == "prefix" and cfg.local_enabled
    assert cfg.ttl_seconds_after_finished is None
    policy = OperatorConfig.from_env(
        {
            "WT_OPERATOR_BATCH_ALLOWED_PROJECTS": "acme-prod, acme-*",
            "WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS": "true",
            "WT_OPERATOR_LOCAL_ENABLED": "false",
            "WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED": "0",
        }
    )
    assert policy.batch_policy.allowed_projects == ("acme-prod", "acme-*")
    assert policy.batch_policy.allow_plaintext_secrets and not policy.local_enabled
    assert policy.ttl_seconds_after_finished == 0
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOCAL_ENABLED"):
        OperatorConfig.from_env({"WT_OPERATOR_LOCAL_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOG_MAX_BYTES"):
        OperatorConfig.from_env({"WT_OPERATOR_LOG_MAX_BYTES": "2000000"})
    with pytest.raises(ConfigError, match="WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS"):
        OperatorConfig.from_env({"WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS": "zero"})
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOCAL_LAUNCHER"):
        OperatorConfig.from_env({"WT_OPERATOR_LOCAL_LAUNCHER": "docker"})

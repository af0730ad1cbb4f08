"""AgentConfig: precedence of file, environment and flags, and refusals that name the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdk_agent.config import AgentConfig, ConfigError


def test_precedence_file_then_env_then_flags(tmp_path):
    config_file = tmp_path / "agent.json"
    config_file.write_text(json.dumps({"port": 9000, "camera": "replay:/frames", "target_per_class": 50}))
    env = {"RDK_AGENT_PORT": "9100", "RDK_AGENT_VERIFY_ON_START": "no", "RDK_AGENT_STREAM_FPS": "5"}
    config = AgentConfig.build(file=config_file, env=env, data_dir=tmp_path / "d", camera=None, port=9200)
    assert config.port == 9200 and config.camera == "replay:/frames" and config.target_per_class == 50
    assert config.verify_on_start is False and config.stream_fps == 5.0
    assert config.models_dir == tmp_path / "d" / "models" and isinstance(config.data_dir, Path)


@pytest.mark.parametrize(
    ("content", "env", "expected"),
    [
        ("{", {}, "not valid JSON"),
        ("[1]", {}, "JSON object"),
        ('{"prot": 1}', {}, "unknown setting(s) prot"),
        ('{"port": 70000}', {}, "out of range"),
        ('{"max_streams": 16}', {}, "max_streams"),
        ("{}", {"RDK_AGENT_PORT": "eighty"}, "RDK_AGENT_PORT"),
    ],
)
def test_bad_settings_are_named(tmp_path, content, env, expected):
    config_file = tmp_path / "agent.json"
    config_file.write_text(content)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        AgentConfig.build(file=config_file, env=env)

"""The CLI with relative --data-dir and --models-dir, started from another working directory (as `make agent` does)."""

from __future__ import annotations

import pytest
import requests

from rdk_agent.launcher import AgentProcess

pytestmark = pytest.mark.server


def test_relative_dirs_serve_every_file_endpoint(tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    agent = AgentProcess(data_dir="var/agent/data", models_dir="var/agent/models", cwd=work).start()
    try:
        captured = requests.post(agent.api("captures"), json={"label": "porosity"}, headers=agent.auth, timeout=30)
        assert captured.status_code == 201, captured.text
        capture = captured.json()
        for part in ("image", "thumbnail", "depth"):
            reply = requests.get(agent.api(f"captures/{capture['id']}/{part}"), headers=agent.auth, timeout=10)
            assert reply.status_code == 200, (part, reply.status_code, reply.text[:200])
            assert reply.content[:8] == b"\x89PNG\r\n\x1a\n" or reply.content[:2] == b"\xff\xd8", part
        manifest = requests.get(agent.api("dataset/manifest"), headers=agent.auth, timeout=10).json()
        files = manifest["samples"][0]["files"]
        for ref in files.values():
            blob = requests.get(agent.api(f"dataset/files/{ref['sha256']}"), headers=agent.auth, timeout=10)
            assert blob.status_code == 200 and len(blob.content) == ref["bytes"]
        # the data landed under the working directory the agent was started from
        assert (work / "var" / "agent" / "data").is_dir() and any((work / "var" / "agent" / "data").rglob("*.png"))
    finally:
        agent.stop()

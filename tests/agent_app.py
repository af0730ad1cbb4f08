"""AgentApp: the agent's Flask app from ``create_app``, driven in process by Flask's test client.

No server, no port, no child process: requests go straight into the WSGI app, so an API test costs
milliseconds. The synthetic camera runs no thread and the live inspection loop is off unless a test
asks for it; the model watcher (a thread that stats the models dir every ``poll_interval_s``) runs
as in production, so hot reload works as on the board. ``restart()`` closes every service and
builds a new app on the same data and models dirs, as a process restart does.

Tests where the process itself is the point (the CLI, signals, kill -9, sockets, the page in a
browser) start a real agent with ``rdk_agent.launcher.AgentProcess`` and carry the ``server`` marker.
"""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from rdk_agent.app import create_app
from rdk_agent.config import AgentConfig

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api(path: str) -> str:
    """The path of ``/api/v1/<path>``."""
    return f"/api/v1/{path.lstrip('/')}"


class AgentApp:
    """One in-process agent with its own data and models dirs.

    ``settings`` are :class:`AgentConfig` fields (``max_upload_bytes=...``, ``inspection={...}``).
    ``client`` is a test client of the current app; ``api(path)`` and ``auth`` match
    :class:`rdk_agent.launcher.AgentProcess`, so a test reads the same against either.
    """

    def __init__(self, data_dir: Path, models_dir: Path, token: str = TOKEN, **settings) -> None:
        self.data_dir = Path(data_dir)
        self.models_dir = Path(models_dir)
        self.token = token
        self.settings = settings
        self.app: Flask | None = None
        self.client: FlaskClient | None = None

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header carrying the token."""
        return {"Authorization": f"Bearer {self.token}"}

    @staticmethod
    def api(path: str) -> str:
        """The path of ``/api/v1/<path>``."""
        return api(path)

    def start(self) -> AgentApp:
        """Build the app (store reconciled, model loaded, watcher started) and a test client for it."""
        config = AgentConfig(data_dir=self.data_dir, models_dir=self.models_dir, **self.settings)
        self.app = create_app(config, token=self.token)
        self.app.config["TESTING"] = True
        self.client = self.app.test_client()
        return self

    def stop(self) -> None:
        """Close every service (watcher, inspector, camera, store and its data-dir lock)."""
        if self.app is not None:
            self.app.extensions["rdk"].close()
            self.app = self.client = None

    def restart(self) -> AgentApp:
        """Stop and start again on the same dirs."""
        self.stop()
        return self.start()


def multipart(files: dict[str, tuple], **fields: str) -> dict:
    """A test-client ``data=`` body from a requests-style ``files`` dict (``name: (filename, bytes[, type])``)."""
    data: dict = dict(fields)
    for name, (filename, content, *content_type) in files.items():
        data[name] = (io.BytesIO(content), filename, *content_type)
    return data

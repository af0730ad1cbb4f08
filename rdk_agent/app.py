"""Application factory: ``create_app(config)`` builds the services and registers every blueprint.

This is the one place the app is wired: the services (``rdk_agent.services``), the JSON error
handlers, the token policy, the body-size guard, and all blueprints, the API's under ``/api/v1``,
``/metrics`` and the operator page.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from rdk_agent.api import camera, captures, dataset, inspect, metrics, model, register_service_errors, stream, system
from rdk_agent.auth import install as install_auth
from rdk_agent.auth import load_or_create_token
from rdk_agent.camera.base import CameraSource
from rdk_agent.config import AgentConfig
from rdk_agent.errors import register_error_handlers
from rdk_agent.services import AgentServices
from rdk_agent.web import bp as web_bp

BLUEPRINTS = (
    system.bp,
    captures.bp,
    dataset.bp,
    stream.bp,
    camera.bp,
    inspect.bp,
    model.bp,
    metrics.bp,
    web_bp,
)


def _refuse_oversize_body() -> None:
    """413 for a body over max_upload_bytes on every route, also those that never read their body."""
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()


def create_app(config: AgentConfig, token: str | None = None, camera: CameraSource | None = None) -> Flask:
    """Build the agent app: services (store reconciled, model loaded), token policy, every blueprint.

    ``token`` defaults to RDK_AGENT_TOKEN or the data dir's token file (created when missing);
    ``camera`` replaces the configured camera. Close the services with ``app.extensions["rdk"].close()``.
    """
    if token is None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        token, _ = load_or_create_token(config.data_dir)
    services = AgentServices.open(config, camera)

    app = Flask("rdk_agent")
    app.url_map.merge_slashes = False  # "a//b" (e.g. an id ending in %2F) is a JSON 404, not an HTML redirect
    app.config.update(MAX_CONTENT_LENGTH=config.max_upload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # typed as the JSONProvider base; the default has it
    register_error_handlers(app)
    register_service_errors(app)
    install_auth(app, token)
    app.before_request(_refuse_oversize_body)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    services.init_app(app)
    return app

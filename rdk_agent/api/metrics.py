"""``GET /metrics``: the agent's metrics in the Prometheus text format (read-only, no token)."""

from __future__ import annotations

from flask import Blueprint, Response

from rdk_agent.api import services
from rdk_agent.telemetry import CONTENT_TYPE

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """Counters, gauges and histograms as Prometheus text 0.0.4."""
    return Response(services().telemetry.render(), content_type=CONTENT_TYPE)

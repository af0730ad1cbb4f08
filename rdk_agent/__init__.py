"""rdk_agent: the weld-inspection agent that runs on a D-Robotics RDK board.

Capture and label frames, store them crash-safely, export them as a dataset over HTTP,
and inspect frames with an ONNX model or the rule-based fallback.
"""

from __future__ import annotations

__version__ = "0.1.0"

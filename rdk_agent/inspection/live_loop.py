"""LiveInspection: an optional background loop inspecting the live camera for the operator page."""

from __future__ import annotations

import logging
import threading

from rdk_agent.camera.base import CameraError, CameraSource
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.review import ReviewQueue

log = logging.getLogger(__name__)


class LiveInspection:
    """Inspects the current frame every ``interval_s`` and keeps the latest result."""

    def __init__(
        self, camera: CameraSource, inspector: Inspector, review: ReviewQueue | None, interval_s: float
    ) -> None:
        self.camera = camera
        self.inspector = inspector
        self.review = review
        self.interval_s = interval_s
        self.latest: dict | None = None
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread."""
        self._thread = threading.Thread(target=self._run, name="live-inspection", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except CameraError as exc:
                self.errors += 1
                log.debug("live inspection skipped a frame: %s", exc)
            except Exception:  # keep inspecting whatever one frame did
                self.errors += 1
                log.exception("live inspection failed")

    def step(self) -> dict:
        """Inspect one frame now."""
        frame = self.camera.read()
        result = self.inspector.inspect(frame.rgb, frame.depth)
        result["source"] = "loop"
        if self.review is not None:
            result["review_capture_id"] = self.review.offer(result, frame.rgb, frame.depth, "loop")
        self.latest = result
        return result

"""Inference deadlines without a thread per request, and per-model health after timeouts.

Each inference runs in the request's own thread with its own ``ort.RunOptions``. One watchdog
thread sets ``terminate`` on any run still going at its deadline; ONNX Runtime then stops
between nodes and ``session.run`` raises, so a slow model costs at most the timeout and never
leaves a stray thread behind.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import onnxruntime as ort


class DeadlineWatchdog:
    """Terminates ONNX Runtime runs that pass their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, ort.RunOptions, list[bool]]] = []
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[ort.RunOptions]:
        """RunOptions whose run is terminated after ``seconds``."""
        options = ort.RunOptions()
        options.log_severity_level = 4  # a terminated run is reported by the caller, not logged as an error
        running = [True]
        with self._cond:
            self._ensure_thread()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._ids), options, running))
            self._cond.notify()
        try:
            yield options
        finally:
            running[0] = False

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="inference-deadlines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                while self._heap and not self._heap[0][3][0]:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, options, running = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if running[0]:
                    options.terminate = True

    def stop(self) -> None:
        """End the watchdog thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)


class ModelHealth:
    """Consecutive timeouts of one model; after ``limit`` of them it rests for ``cooldown_s``."""

    def __init__(self, limit: int = 3, cooldown_s: float = 30.0) -> None:
        self.limit = limit
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self.consecutive_timeouts = 0
        self.total_timeouts = 0
        self._resting_until = 0.0

    def available(self) -> bool:
        """False while the model rests after repeated timeouts."""
        return time.monotonic() >= self._resting_until

    def record_timeout(self) -> None:
        """Count a timeout; start a rest period at the limit."""
        with self._lock:
            self.consecutive_timeouts += 1
            self.total_timeouts += 1
            if self.consecutive_timeouts >= self.limit:
                self._resting_until = time.monotonic() + self.cooldown_s
                self.consecutive_timeouts = 0

    def record_success(self) -> None:
        """A run finished in time."""
        with self._lock:
            self.consecutive_timeouts = 0

    def to_dict(self) -> dict:
        """JSON summary."""
        rest = max(0.0, self._resting_until - time.monotonic())
        return {"healthy": rest == 0.0, "resting_s": round(rest, 1), "timeouts": self.total_timeouts}

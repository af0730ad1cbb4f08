"""P1: the agent's ``POST /api/v1/inspect`` end to end ÷ bare ONNX Runtime on the same frame and model.

    .venv/bin/python bench/p1_agent_overhead.py [--quick] [--n 40] [--format jpeg|png] [--out FILE]

A: a real agent subprocess (``python -m rdk_agent``, synthetic camera) serving the default model
(bench/models.py) with ``inspection.rules = on_fallback``, 1 intra-op thread, confidence threshold 0
(the model decides every frame, so the rules never run); the client times a multipart upload of one
encoded 640x480 synthetic weld frame, image only, over a kept-alive loopback connection. The client is
``http.client`` with the multipart body encoded once, so that it adds next to nothing of its own: with
``requests`` encoding the upload and parsing the answer each time, the client's own share was ~1.5 ms.
B: in this process, ``cv2.imdecode`` of the same bytes + the shared preprocess + ``session.run`` of the
same model file with 1 intra-op thread. A and B alternate; medians. Goal A / B <= 1.25.
Per-stage medians (decode, preprocess, inference: the agent's from each answer's ``latency_ms``, the bare
side's timed around each call) and what only the agent does (the rest of its server time, and the client
wall minus the server total: HTTP, multipart parsing, auth, JSON) say where a difference lies.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import onnxruntime as ort
import requests
from urllib3.filepost import encode_multipart_formdata

from bench.common import emit, figure, interleave, log, median_ms, parser
from bench.models import default_weld_model
from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from rdk_agent.inspection.onnx_model import read_card, session_options
from rdk_agent.launcher import AgentProcess
from shared_schema.preprocess import preprocess

AGENT_INSPECTION = {
    "intra_op_threads": 1,
    "rules": "on_fallback",
    "confidence_threshold": 0.0,
    "review_threshold": 0.0,
    "timeout_ms": 10_000.0,
}


def encoded_frame(fmt: str, seed: int = 1, label: str = "porosity") -> bytes:
    """One synthetic 640x480 weld frame as JPEG (quality 90) or PNG bytes."""
    rgb = SyntheticWeldGenerator(seed=seed).generate(label).rgb
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90]) if fmt == "jpeg" else cv2.imencode(".png", rgb)
    assert ok
    return buf.tobytes()


def start_agent(root: Path, model: Path, inspection: dict, token: str = "bench") -> AgentProcess:
    """A real agent on a free loopback port with ``model`` already in its models dir, serving it."""
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "model.onnx").write_bytes(model.read_bytes())
    agent = AgentProcess(root / "data", models, token=token, config={"inspection": inspection})
    agent.start(timeout=120)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    deadline = time.monotonic() + 120
    while served_sha256(agent) != sha:
        if time.monotonic() > deadline:
            agent.stop()
            raise RuntimeError(f"the agent did not start serving the model:\n{agent.log()}")
        time.sleep(0.1)
    return agent


def served_sha256(agent: AgentProcess, session: requests.Session | None = None) -> str | None:
    """The sha256 of the model GET /api/v1/model reports as active (None when none is)."""
    body = (session or requests).get(agent.api("model"), headers=agent.auth, timeout=10).json()
    return (body.get("active") or {}).get("sha256")


STAGES = ("decode", "preprocess", "inference")


def bare_runner(model: Path, data: bytes, stages: list[dict], threads: int = 1) -> Callable[[], None]:
    """A callable doing decode + preprocess + session.run once (the session built once); each call appends
    its stage times (ms) to ``stages``."""
    session = ort.InferenceSession(
        str(model), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
    card = read_card(session)

    def run() -> None:
        t0 = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        tensor = preprocess(image, card.input)[None]
        t2 = time.perf_counter()
        session.run([card.output_name], {card.input.tensor_name: tensor})
        t3 = time.perf_counter()
        stages.append({"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "inference": (t3 - t2) * 1e3})

    return run


def _get(conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("GET", path)
    conn.getresponse().read()


def _median(rows: list[dict], key: str) -> float:
    return round(statistics.median(row[key] for row in rows), 2)


def stage_table(agent: list[dict], bare: list[dict]) -> list[str]:
    """Per-stage medians, agent (server-side, from latency_ms) against bare, and what only the agent does."""
    lines = [f"{name}: agent {_median(agent, name)} ms, bare {_median(bare, name)} ms" for name in STAGES]
    for row in agent:
        row["server_other"] = row["total"] - sum(row[name] for name in STAGES)
        row["http"] = row["wall"] - row["total"]
    lines.append(f"server-side rest (thresholds, result, telemetry): agent {_median(agent, 'server_other')} ms")
    lines.append(
        f"client wall - server total (HTTP, multipart parsing, auth, review offer, JSON): {_median(agent, 'http')} ms"
    )
    return lines


def measure(n: int, fmt: str, warmup: int = 3) -> dict:
    """Interleaved agent vs bare runs; returns a figure."""
    model = default_weld_model()
    data = encoded_frame(fmt)
    agent_stages: list[dict] = []
    bare_stages: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp:
        agent = start_agent(Path(tmp), model, AGENT_INSPECTION)
        try:
            url = urlsplit(agent.api("inspect"))
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            body, content_type = encode_multipart_formdata({"image": (f"frame.{fmt}", data)})
            headers = {**agent.auth, "Content-Type": content_type}
            last: dict = {}

            def agent_run() -> None:
                started = time.perf_counter()
                conn.request("POST", url.path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                wall = (time.perf_counter() - started) * 1e3
                if response.status != 200:
                    raise RuntimeError(f"inspect answered {response.status}: {answer[:300]!r}")
                last.update(json.loads(answer))
                agent_stages.append({**last["latency_ms"], "wall": wall})

            runs = {"agent": agent_run, "bare": bare_runner(model, data, bare_stages)}
            samples = interleave(runs, n, warmup=warmup)
            round_trip = median_ms(interleave({"healthz": lambda: _get(conn, "/healthz")}, n, warmup)["healthz"])
        finally:
            conn.close()
            agent.stop()
    agent_stages, bare_stages = agent_stages[warmup:], bare_stages[warmup:]
    a, b = median_ms(samples["agent"]), median_ms(samples["bare"])
    notes = [
        f"agent in rules=on_fallback mode, 1 intra-op thread, engine={last['engine']}, rules={last['rules']}",
        f"frame: 640x480 synthetic weld, {fmt.upper()} {len(data) / 1024:.0f} KiB, image only, multipart body "
        f"encoded once, http.client; model {model.name}; {n} interleaved runs each",
        *stage_table(agent_stages, bare_stages),
        f"for scale: GET /healthz over the same connection (waitress + Flask, no body) {round_trip} ms",
    ]
    return figure(
        "P1",
        "agent POST /inspect ÷ bare decode+preprocess+session.run",
        ("agent", a, "ms"),
        ("bare ORT", b, "ms"),
        a / b,
        "<= 1.25",
        notes,
        {
            "agent_ms": samples["agent"],
            "bare_ms": samples["bare"],
            "agent_stages_ms": agent_stages,
            "bare_stages_ms": bare_stages,
            "frame_bytes": len(data),
            "format": fmt,
            "model": model.name,
            "healthz_ms": round_trip,
        },
    )


def main(argv: list[str] | None = None) -> int:
    """Run P1 and print the figure."""
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="interleaved runs per side (default 40, quick 10)")
    p.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    args = p.parse_args(argv)
    n = args.n or (10 if args.quick else 40)
    log(f"P1: agent vs bare ORT, {n} runs each")
    emit([measure(n, args.format)], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

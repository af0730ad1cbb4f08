"""P1: the agent's ``POST /api/v1/inspect`` end to end ÷ bare ONNX Runtime on the same frame and model.

    .venv/bin/python bench/p1_agent_overhead.py [--quick] [--n 40] [--format jpeg|png] [--out FILE]

A: a real agent subprocess (``python -m rdk_agent``, synthetic camera) serving the default model
(bench/models.py) with ``inspection.rules = on_fallback``, 1 intra-op thread, confidence threshold 0
(the model decides every frame, so the rules never run); the client times a multipart upload of one
encoded 640x480 synthetic weld frame, image only, over a kept-alive loopback connection.
B: in this process, ``cv2.imdecode`` of the same bytes + the shared preprocess + ``session.run`` of the
same model file with 1 intra-op thread. A and B alternate; medians. Goal A / B <= 1.25.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import onnxruntime as ort
import requests

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


def bare_runner(model: Path, data: bytes, threads: int = 1):
    """A callable doing decode + preprocess + session.run once; the session is built once."""
    session = ort.InferenceSession(
        str(model), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
    card = read_card(session)

    def run() -> None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        session.run([card.output_name], {card.input.tensor_name: preprocess(image, card.input)[None]})

    return run


def measure(n: int, fmt: str) -> dict:
    """Interleaved agent vs bare runs; returns a figure."""
    model = default_weld_model()
    data = encoded_frame(fmt)
    with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp:
        agent = start_agent(Path(tmp), model, AGENT_INSPECTION)
        try:
            http = requests.Session()
            files = {"image": (f"frame.{fmt}", data)}
            last: dict = {}

            def agent_run() -> None:
                r = http.post(agent.api("inspect"), files=files, headers=agent.auth, timeout=60)
                r.raise_for_status()
                last.update(r.json())

            samples = interleave({"agent": agent_run, "bare": bare_runner(model, data)}, n, warmup=3)
        finally:
            agent.stop()
    a, b = median_ms(samples["agent"]), median_ms(samples["bare"])
    server = last["latency_ms"]
    notes = [
        f"agent in rules=on_fallback mode, 1 intra-op thread, engine={last['engine']}, rules={last['rules']}",
        f"frame: 640x480 synthetic weld, {fmt.upper()} {len(data) / 1024:.0f} KiB, image only; "
        f"model {model.name}; {n} interleaved runs each",
        f"server-side stages of the last request (ms): {server}; client wall - server total = "
        f"{a - server['total']:.1f} ms (HTTP, multipart parsing, auth, JSON)",
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
            "server_stages_ms": server,
            "frame_bytes": len(data),
            "format": fmt,
            "model": model.name,
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

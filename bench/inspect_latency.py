"""Inspection latency: ONNX path vs rule path on the same frame, and agent end-to-end vs bare ``session.run``.

    .venv/bin/python bench/inspect_latency.py [--model model.onnx] [--n 50] [--threads 1]

Without ``--model`` a small generated CNN (3 strided convs at 224x224, tests/helpers/onnx_models.py)
stands in for a trained model. Three measurements, medians over ``--n`` runs of one synthetic
640x480 weld frame (PNG + 16-bit depth PNG):

1. in-process Inspector: ONNX path (model confident) and rule path (no model), per stage, for each
   rules mode (``always`` with the rules parallel to or after ORT, and ``on_fallback``);
2. bare: PNG decode + shared preprocess + ``session.run`` with the same thread count;
3. a real agent (``python -m rdk_agent``), ``POST /api/v1/inspect`` with the same upload,
   client wall time, for each rules mode; the ratio 3 / 2 is the cost of the agent around the model
   (HTTP, multipart, checked decode, deadline, rules, JSON). bench/p1_agent_overhead.py and
   bench/p2_ml_vs_rules.py are the suite's interleaved versions of 3 / 2 and of 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rdk_agent.camera.synthetic import SyntheticWeldGenerator
from rdk_agent.inspection.inspector import Inspector
from rdk_agent.inspection.model_manager import ModelManager
from rdk_agent.inspection.onnx_model import OnnxClassifier, session_options
from rdk_agent.inspection.rubric import Rubric
from rdk_agent.inspection.rules import RuleEvaluator
from rdk_agent.inspection.settings import InspectionSettings
from shared_schema import LabelSchema, default_weld_schema, label_schema_from_names, read_model_card
from shared_schema.preprocess import preprocess
from tests.helpers import onnx_models as om
from tests.helpers.agent_process import AgentProcess

MODES = {
    "rules always, parallel to ORT": {"rules": "always", "parallel_rules": True},
    "rules always, after ORT": {"rules": "always", "parallel_rules": False},
    "rules on_fallback": {"rules": "on_fallback"},
}


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000.0, 2)


def schema_for(model: Path) -> LabelSchema:
    """The weld schema, or a schema with the model card's labels (same hash) for a model of another station."""
    card = read_model_card(model)
    weld = default_weld_schema()
    return weld if card.label_schema_hash == weld.hash else label_schema_from_names(list(card.labels), name="bench")


def in_process(models_dir: Path, schema: LabelSchema, frame, settings: InspectionSettings, n: int) -> dict:
    models = ModelManager(models_dir, schema, settings)
    models.start()
    inspector = Inspector(models, RuleEvaluator(Rubric.from_dict({}), schema), settings)  # rules of this schema
    try:
        results = [inspector.inspect(frame.rgb, frame.depth) for _ in range(n + 3)][3:]
    finally:
        models.stop()
        inspector.close()
    stages = {k: round(statistics.median(r["latency_ms"][k] for r in results), 2) for k in results[0]["latency_ms"]}
    return {"engine": results[0]["engine"], "reason": results[0]["fallback_reason"], "median_ms": stages}


def bare(model_path: Path, schema: LabelSchema, rgb_png: bytes, threads: int, n: int) -> float:
    data = model_path.read_bytes()
    card = OnnxClassifier(data, schema, threads).card
    session = ort.InferenceSession(data, sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    times = []
    for _ in range(n + 3):
        t = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(rgb_png, np.uint8), cv2.IMREAD_COLOR)
        x = preprocess(image, card.input)[None]
        session.run([card.output_name], {card.input.tensor_name: x})
        times.append(time.perf_counter() - t)
    return median_ms(times[3:])


def end_to_end(root: Path, model_path: Path, schema: LabelSchema, files: dict, settings: dict, n: int):
    root.mkdir(parents=True)
    labels = root / "labels.json"
    labels.write_text(json.dumps(schema.to_dict()))
    agent = AgentProcess(
        root / "data", root / "models", config={"inspection": settings}, args=["--labels", str(labels)]
    )
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "model.onnx").write_bytes(model_path.read_bytes())
    agent.start()
    try:
        session = requests.Session()
        times, last = [], {}
        for _ in range(n + 3):
            t = time.perf_counter()
            r = session.post(agent.api("inspect"), files=files, headers=agent.auth, timeout=60)
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            last = r.json()
        return median_ms(times[3:]), last
    finally:
        agent.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model.onnx for the weld schema (default: generated small CNN)")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads everywhere")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or om.write_small_cnn(root / "cnn.onnx")
        schema = schema_for(model)
        frame = SyntheticWeldGenerator(seed=1).generate("porosity")
        files = {
            "image": ("f.png", cv2.imencode(".png", frame.rgb)[1].tobytes()),
            "depth": ("d.png", cv2.imencode(".png", frame.depth)[1].tobytes()),
        }
        base = {
            "intra_op_threads": args.threads,
            "confidence_threshold": 0.0,
            "review_threshold": 0.0,
            "timeout_ms": 10_000.0,
        }
        print(f"model: {model.name}, {args.n} runs, intra_op_threads={args.threads}, frame 640x480 + depth")
        (root / "with").mkdir()
        (root / "with" / "model.onnx").write_bytes(model.read_bytes())
        (root / "without").mkdir()
        for name, mode in MODES.items():
            settings = InspectionSettings(**mode, **base)
            onnx_path = in_process(root / "with", schema, frame, settings, args.n)
            rules_path = in_process(root / "without", schema, frame, settings, args.n)
            print(f"in-process, {name}:")
            print(f"  onnx path  ({onnx_path['engine']}): {onnx_path['median_ms']}")
            print(f"  rules path ({rules_path['engine']}, {rules_path['reason']}): {rules_path['median_ms']}")
        bare_ms = bare(model, schema, files["image"][1], args.threads, args.n)
        print(f"bare decode + preprocess + session.run: {bare_ms} ms")
        for i, (name, mode) in enumerate(MODES.items()):
            e2e_ms, last = end_to_end(root / f"agent-{i}", model, schema, files, {**base, **mode}, args.n)
            print(
                f"agent POST /api/v1/inspect ({name}): {e2e_ms} ms "
                f"(engine {last['engine']}), ratio to bare {e2e_ms / bare_ms:.2f}; "
                f"server-side stages {last['latency_ms']}"
            )


if __name__ == "__main__":
    main()

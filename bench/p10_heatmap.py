"""P10: where the heat map points, and what it costs the agent (issue 13).

    .venv/bin/python bench/p10_heatmap.py [--run-dir var/demo/train] [--per-label 60] [--seed 1000]
        [--rounds 6] [--threads 4] [--quick] [--out FILE]

The classifier is a trained ``desktop_trainer`` run (default: ``make demo``'s, ``var/demo/train``: the
``+experiment=demo`` recipe, Lite0 RGB-D at 400x300 letterbox). Its chosen checkpoint is exported twice
with ``export_onnx``: with the class maps (``cam``, and ``cam_fine`` when the run trained the auxiliary
stride-16 head, ``model.aux_head``) and without (an older model).

Hit rate: fresh synthetic frames (generator ``--seed``, never trained on) of porosity, spatter and gap go
through the agent's ``OnnxClassifier`` and ``build_heatmap``. For each frame the classifier gets right, the
peak cell (at the map's own resolution, mapped back to frame pixels) hits when it contains or touches
(within one pixel) a drawn defect: pores and droplets as discs of their recorded radius, a gap as the
polygon where the bead is missing (``frame.meta["defects"]``). Chance is the share of cells that would hit.
Beside the served map, the head's ``cam`` alone and ``cam_fine`` alone are scored on the same frames.
Goal: >= 80 % per label.

Overhead: two agent ``Inspector``s (rules on fallback, confidence threshold 0) serve the two exports,
interleaved on the same frames; inspection time with the map ÷ without. Goal <= 1.15.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, emit, figure, interleave, log, median_ms, parser
from rdk_agent.camera.synthetic import LABELS, SyntheticWeldGenerator
from rdk_agent.inspection.heatmap import FrameGeometry, Grid, build_heatmap, class_map, peak_cell
from rdk_agent.inspection.onnx_model import OnnxClassifier
from shared_schema import default_weld_schema, read_model_card

DEFECTS = ("porosity", "spatter", "gap")


def load_run(run_dir: Path):
    """The run's network with its chosen checkpoint (CPU, eval) and the card of its model.onnx."""
    import json

    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    card = read_model_card(run_dir / "model.onnx")
    ckpt = json.loads((run_dir / "metrics.json").read_text())["model"]["checkpoint"]
    c = card.input
    net = instantiate(
        cfg.model.net, num_classes=len(card.labels), in_channels=c.num_channels, image_size=(c.height, c.width)
    )
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    return net.eval(), card, ckpt


def defect_mask(meta: dict, shape: tuple[int, int]) -> np.ndarray:
    """The frame pixels the generator drew a defect on (pores and droplets as discs, a gap as its polygon)."""
    mask = np.zeros(shape, np.uint8)
    for d in meta["defects"]:
        if d["type"] in ("pore", "droplet"):
            x0, _, x1, _ = d["box_px"]
            cv2.circle(mask, (d["x"], d["y"]), max(1, round((x1 - x0) / 2)), 1, -1)
        elif d["type"] == "gap":
            cv2.fillPoly(mask, [np.array(d["polygon_px"], np.int32)], 1)
    return mask


def touches(mask: np.ndarray, cell: dict) -> bool:
    """Whether the cell rectangle, grown by one pixel, covers a defect pixel."""
    h, w = mask.shape
    x0, y0 = max(0, int(np.floor(cell["x"])) - 1), max(0, int(np.floor(cell["y"])) - 1)
    x1 = min(w, int(np.ceil(cell["x"] + cell["width"])) + 1)
    y1 = min(h, int(np.ceil(cell["y"] + cell["height"])) + 1)
    return bool(mask[y0:y1, x0:x1].any())


def chance(mask: np.ndarray, heatmap: dict, card) -> float:
    """The share of the map's cells whose frame rectangle touches a defect (a peak picked at random)."""
    h, w = heatmap["shape"]
    key = "fine_grid" if heatmap["source"] != "cam" else "grid"
    grid = Grid.from_card(card.provenance, (h, w), card.input, key)
    geometry = FrameGeometry(mask.shape[0], mask.shape[1], card.input)
    hits = 0
    for i in range(h):
        for j in range(w):
            one = np.zeros((h, w), np.float32)
            one[i, j] = 1.0
            cell = peak_cell(one, geometry, grid)["cell"]
            hits += cell["width"] > 0 and cell["height"] > 0 and touches(mask, cell)
    return hits / (h * w)


def fine_only_cell(prediction, frame_shape: tuple[int, ...], card) -> dict:
    """The peak cell of the predicted class's ``cam_fine`` map alone, placed by the card's fine grid."""
    norm = class_map(prediction.cam_fine, prediction.index)
    grid = Grid.from_card(card.provenance, norm.shape, card.input, "fine_grid")
    return peak_cell(norm, FrameGeometry(int(frame_shape[0]), int(frame_shape[1]), card.input), grid)["cell"]


def hit_rate(model: OnnxClassifier, per_label: int, seed: int) -> dict:
    """Per label: frames, correctly classified; per defect label the peak hits among those (the served map,
    the head's ``cam`` alone and ``cam_fine`` alone), chance level and misses."""
    gen = SyntheticWeldGenerator(seed=seed)
    card = model.card
    out: dict = {}
    for label in LABELS:
        row: dict = {"frames": 0, "correct": 0, "hits": 0, "hits_cam_only": 0, "hits_fine_only": 0}
        row |= {"chance": [], "misses": []}
        for _ in range(per_label):
            frame = gen.generate(label)
            prediction = model.predict(frame.rgb, frame.depth)
            row["frames"] += 1
            if prediction.label != label:
                continue
            row["correct"] += 1
            if label not in DEFECTS:
                continue
            args = (prediction.index, prediction.label, frame.rgb.shape, card.input, card.provenance)
            heatmap = build_heatmap(prediction.cam, *args, prediction.cam_fine)  # as the inspector builds it
            mask = defect_mask(frame.meta, frame.rgb.shape[:2])
            hit = touches(mask, heatmap["cell"])
            row["hits"] += hit
            row["hits_cam_only"] += touches(mask, build_heatmap(prediction.cam, *args)["cell"])
            if prediction.cam_fine is not None:
                row["hits_fine_only"] += touches(mask, fine_only_cell(prediction, frame.rgb.shape, card))
            row["chance"].append(chance(mask, heatmap, card))
            row["source"] = heatmap["source"]
            if not hit:
                row["misses"].append({"index": frame.meta["index"], "peak": heatmap["peak"]})
        if label in DEFECTS and row["correct"]:
            row["rate"] = round(row["hits"] / row["correct"], 4)
            row["rate_cam_only"] = round(row["hits_cam_only"] / row["correct"], 4)
            row["rate_fine_only"] = round(row["hits_fine_only"] / row["correct"], 4)
            row["chance"] = round(float(np.mean(row["chance"])), 4)
        else:
            for key in ("chance", "hits", "hits_cam_only", "hits_fine_only", "misses"):
                row.pop(key)
        out[label] = row
    return out


def overhead(cam_model: Path, plain_model: Path, rounds: int, threads: int) -> dict:
    """Interleaved Inspector.inspect: the cam export (map built and returned) vs the plain export."""
    from rdk_agent.inspection.inspector import Inspector
    from rdk_agent.inspection.model_manager import ModelManager
    from rdk_agent.inspection.settings import InspectionSettings

    schema = default_weld_schema()
    settings = InspectionSettings(
        intra_op_threads=threads,
        rules="on_fallback",
        confidence_threshold=0.0,
        review_threshold=0.0,
        timeout_ms=60_000.0,
        poll_interval_s=600.0,
    )
    gen = SyntheticWeldGenerator(seed=7)
    frames = [gen.generate(label) for label in LABELS for _ in range(2)]
    inspectors, seen = {}, {"with_map": [], "without_map": []}
    with tempfile.TemporaryDirectory(prefix="bench-p10-") as tmp:
        for name, model in (("with_map", cam_model), ("without_map", plain_model)):
            (Path(tmp) / name).mkdir()
            (Path(tmp) / name / "model.onnx").write_bytes(model.read_bytes())
            models = ModelManager(Path(tmp) / name, schema, settings)
            models.start()
            inspectors[name] = Inspector(models, None, settings)
        samples: dict[str, list[float]] = {name: [] for name in inspectors}
        try:
            for frame in frames:
                runs = {
                    name: (
                        lambda insp=insp, name=name, f=frame: seen[name].append(insp.inspect(f.rgb, f.depth)) or None
                    )
                    for name, insp in inspectors.items()
                }
                for name, values in interleave(runs, rounds, warmup=1).items():
                    samples[name] += values
        finally:
            for insp in inspectors.values():
                insp.models.stop()
                insp.close()
    with_map = [r for r in seen["with_map"] if r["heatmap"] is not None]
    assert len(with_map) == len(seen["with_map"]) and all(r["heatmap"] is None for r in seen["without_map"])
    return {
        "with_map_ms": median_ms(samples["with_map"]),
        "without_map_ms": median_ms(samples["without_map"]),
        "heatmap_ms": round(float(np.median([r["latency_ms"]["heatmap"] for r in with_map])), 3),
        "inference_ms": {
            name: round(float(np.median([r["latency_ms"]["inference"] for r in seen[name]])), 3) for name in seen
        },
        "png_bytes": int(np.median([len(r["heatmap"]["png"]) for r in with_map])),
        "json_bytes": int(np.median([len(str(r["heatmap"])) for r in with_map])),
        "frames": len(frames),
        "rounds": rounds,
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> int:
    """Export the run's checkpoint with and without cam, measure the hit rate and the overhead, print the figures."""
    from desktop_trainer.export.onnx_export import check_parity, export_onnx
    from shared_schema.preprocess import preprocess

    p = parser(__doc__.split("\n", 1)[0])
    p.add_argument("--run-dir", type=Path, default=REPO / "var" / "demo" / "train")
    p.add_argument("--per-label", type=int, default=60)
    p.add_argument("--seed", type=int, default=1000, help="generator seed of the fresh frames")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args(argv)
    per_label, rounds = (8, 2) if args.quick else (args.per_label, args.rounds)
    if not (args.run_dir / "metrics.json").is_file():
        raise SystemExit(f"no trained run in {args.run_dir}: run `make demo` first, or give --run-dir <hydra run dir>")
    net, card, ckpt = load_run(args.run_dir)
    schema = default_weld_schema()
    with tempfile.TemporaryDirectory(prefix="bench-p10-models-") as tmp:
        cam_path = export_onnx(net, card, Path(tmp) / "cam.onnx")
        plain_path = export_onnx(net, card, Path(tmp) / "plain.onnx", cam=False)
        gen = SyntheticWeldGenerator(seed=args.seed + 1)
        batch = np.stack([preprocess(f.rgb, card.input, f.depth) for f in (gen.generate(lb) for lb in LABELS)])
        parity = check_parity(net, cam_path, batch)
        fine = parity.get("cam_fine", {}).get("shape")
        log(f"exported {ckpt}: cam {parity['cam']['shape']}, cam_fine {fine}, parity {parity['max_abs_diff']:.1e}")
        model = OnnxClassifier.from_file(cam_path, schema, intra_op_threads=args.threads)
        hits = hit_rate(model, per_label, args.seed)
        cost = overhead(cam_path, plain_path, rounds, args.threads)
    rates = {label: hits[label].get("rate", 0.0) for label in DEFECTS}
    accuracy = sum(r["correct"] for r in hits.values()) / sum(r["frames"] for r in hits.values())
    notes = [
        f"run {args.run_dir} ({card.input.channels} {card.input.width}x{card.input.height} {card.input.resize}), "
        f"checkpoint {Path(ckpt).name}; cam {parity['cam']['shape']} per class",
        f"{per_label} fresh frames per label from generator seed {args.seed}; classifier accuracy {accuracy:.3f}",
        *(
            f"{label}: {hits[label]['hits']} of {hits[label]['correct']} correct frames hit "
            f"({rates[label]:.1%}, {hits[label].get('source')}; the head's cam alone "
            f"{hits[label].get('rate_cam_only', 0):.1%}, cam_fine alone {hits[label].get('rate_fine_only', 0):.1%}; "
            f"chance {hits[label].get('chance', 0):.1%}), "
            f"{hits[label]['frames']} frames"
            for label in DEFECTS
        ),
        f"overhead: with map {cost['with_map_ms']} ms, without {cost['without_map_ms']} ms median "
        f"({cost['frames']} frames x {rounds} rounds, {args.threads} threads); heatmap build {cost['heatmap_ms']} ms, "
        f"PNG {cost['png_bytes']} base64 chars",
    ]
    figures = [
        figure(
            "P10a",
            "heat-map peak on a drawn defect (lowest label)",
            ("hit rate", min(rates.values()), ""),
            goal=">= 0.8",
            value=min(rates.values()),
            notes=notes,
            details={"hits": hits, "rates": rates},
        ),
        figure(
            "P10b",
            "inspection with the map ÷ without",
            ("with map", cost["with_map_ms"], "ms"),
            ("without", cost["without_map_ms"], "ms"),
            cost["with_map_ms"] / cost["without_map_ms"],
            "<= 1.15",
            details=cost,
        ),
    ]
    emit(figures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

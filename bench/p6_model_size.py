"""P6: the default model's MACs and parameters at its input size, and an estimate of its RDK X5 CPU latency.

    .venv/bin/python bench/p6_model_size.py [--quick] [--out FILE]

The default model is ``+experiment=baseline`` composed with Hydra's compose API; MACs come from the
trainer's own counter (torch's FLOP counter / 2). The board latency is an ESTIMATE, not a measurement
on a board: this machine's measured ONNX Runtime latency at 1 intra-op thread (the fastest run; the bench
default model, same network and input size) is turned into ms per GMAC and scaled by the ratio of peak fp32
multiply-accumulate rates per core: this x86 core (AVX2, 2 x 256-bit FMA = 16 MAC/cycle at the clock
/proc/cpuinfo reports) over a Cortex-A55 core (one 128-bit NEON FMA = 4 MAC/cycle at 1.5 GHz).
An in-order A55 with a smaller cache usually reaches a lower fraction of its peak than an x86 core, so
the real figure is likely higher. The 4-thread figure assumes 75 % parallel efficiency.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort
import torch

from bench.common import emit, figure, interleave, log, parser
from bench.models import build_baseline_net, compose_baseline, default_weld_model
from desktop_trainer.models.macs import count_macs
from rdk_agent.inspection.onnx_model import read_card, session_options
from shared_schema import default_weld_schema

A55_MAC_PER_CYCLE, A55_GHZ = 4, 1.5
X86_MAC_PER_CYCLE = 16
FOUR_THREAD_EFFICIENCY = 0.75


def cpu_ghz() -> float:
    """This machine's clock as /proc/cpuinfo reports it (GHz)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000.0
    return 3.0


def measure(runs: int) -> dict:
    """MACs, parameters, x86 latency and the board estimate; returns the figure."""
    cfg = compose_baseline()
    size = int(cfg.data.image_size)
    net = build_baseline_net(cfg, len(default_weld_schema().names))
    macs = count_macs(net, (3, size, size))
    params = sum(p.numel() for p in net.parameters())
    model = default_weld_model()
    session = ort.InferenceSession(str(model), sess_options=session_options(1), providers=["CPUExecutionProvider"])
    card = read_card(session)
    x = torch.zeros(1, 3, size, size).numpy()
    samples = interleave(
        {"ort": lambda: session.run([card.output_name], {card.input.tensor_name: x}) and None}, runs, warmup=3
    )
    x86_ms = round(min(samples["ort"]) * 1000.0, 3)  # the least disturbed run: the board runs alone
    gmacs = macs / 1e9
    ghz = cpu_ghz()
    factor = (X86_MAC_PER_CYCLE * ghz) / (A55_MAC_PER_CYCLE * A55_GHZ)
    board_1t = x86_ms * factor
    board_4t = board_1t / (4 * FOUR_THREAD_EFFICIENCY)
    notes = [
        f"{cfg.model.backbone} at {size}x{size}x3: {macs / 1e6:.0f} M MACs, {params / 1e6:.2f} M parameters "
        f"(5-class weld head)",
        f"x86 measured: {x86_ms:.1f} ms at 1 thread ({x86_ms / gmacs:.1f} ms/GMAC, fastest of {runs} runs on "
        f"the shared machine: the least disturbed by other load); A55 factor {factor:.1f} = "
        f"({X86_MAC_PER_CYCLE} MAC/cycle x {ghz:.2f} GHz) / "
        f"({A55_MAC_PER_CYCLE} MAC/cycle x {A55_GHZ} GHz)",
        f"ESTIMATE for the RDK X5 CPU (not measured on a board): ~{board_1t:.0f} ms at 1 thread, "
        f"~{board_4t:.0f} ms at 4 threads ({FOUR_THREAD_EFFICIENCY:.0%} efficiency assumed)",
    ]
    return figure(
        "P6",
        "default model size and estimated RDK X5 CPU latency (1 thread)",
        ("MACs", round(macs / 1e6, 1), "M"),
        ("params", round(params / 1e6, 3), "M"),
        None,
        None,
        notes,
        {
            "macs": macs,
            "params": params,
            "input": [3, size, size],
            "x86_ms_1t": x86_ms,
            "x86_ms_per_gmac": round(x86_ms / gmacs, 2),
            "a55_factor": round(factor, 2),
            "board_estimate_ms_1t": round(board_1t, 1),
            "board_estimate_ms_4t": round(board_4t, 1),
        },
        value=round(board_1t, 1),
    )


def main(argv: list[str] | None = None) -> int:
    """Run P6 and print the figure."""
    args = parser(__doc__).parse_args(argv)
    log("P6: MACs, parameters, board latency estimate")
    emit([measure(10 if args.quick else 30)], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

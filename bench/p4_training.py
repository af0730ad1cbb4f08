"""P4: Lightning training images/s ÷ a minimal hand-written PyTorch loop, same model, data and batch size.

    .venv/bin/python bench/p4_training.py [--quick] [--steps 6] [--rounds 2] [--data PATH] [--out FILE]

Both sides get a fresh module from desktop_trainer's own factories (``build_datamodule`` and
``build_module`` on the ``+experiment=baseline`` config composed with Hydra, reading the magnetic-tile
folder), the same seed, the datamodule's own train loader (augmentation included), the same optimiser
and one-cycle schedule, on the CPU in fp32. A: ``lightning.Trainer.fit`` with ``max_steps`` (no
validation, logger, checkpoints or progress bar: those are per-epoch costs, not per-step ones).
B: ``for x, y in loader: loss(net(x), y).backward(); opt.step(); sched.step()``.
Throughput is steady state: images/s of each step after the first (step end to step end, data loading
included), pooled over the runs of a side; A and B alternate per round; medians (robust to the shared
machine's stalls, which reach tens of seconds on single steps). Goal A / B >= 0.9.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
import torch

from bench.common import data_path, emit, figure, log, parser
from bench.models import compose_baseline
from desktop_trainer.train import build_datamodule, build_module


class StepClock(L.Callback):
    """Wall-clock time at the end of every training step."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


def step_rates(ends: list[float], batch_size: int) -> list[float]:
    """Images per second of every step after the first (data loading included)."""
    return [batch_size / (b - a) for a, b in itertools.pairwise(ends)]


def lightning_run(cfg, dm, steps: int) -> list[float]:
    """Fit ``steps`` steps with lightning.Trainer; step end times."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, dm)
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision="32-true",
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
        default_root_dir=cfg.paths.output_dir,
    )
    trainer.fit(module, datamodule=dm)
    return clock.ends


def plain_run(cfg, dm, steps: int) -> list[float]:
    """The same steps in a hand-written loop; step end times."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, dm)
    module.train()
    optimizer = module.optimizer_factory(params=[p for p in module.parameters() if p.requires_grad])
    scheduler = module.scheduler_factory(optimizer=optimizer, total_steps=steps) if module.scheduler_factory else None
    ends: list[float] = []
    for x, y in dm.train_dataloader():
        optimizer.zero_grad(set_to_none=True)
        loss = module.loss(module.net(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        ends.append(time.perf_counter())
        if len(ends) == steps:
            break
    return ends


def measure(data: Path, steps: int, rounds: int) -> dict:
    """Alternate Lightning and the plain loop ``rounds`` times; returns the figure."""
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as tmp:
        cfg = compose_baseline(
            f"data.source={data}",
            "data.glob=*.jpg",
            f"paths.output_dir={tmp}",
            f"data.cache_dir={tmp}/cache",
            "data.progress=false",
        )
        dm = build_datamodule(cfg)
        batch = int(cfg.data.batch_size)
        runs = {"lightning": lambda: lightning_run(cfg, dm, steps), "plain": lambda: plain_run(cfg, dm, steps)}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(rounds):
            for name in runs if i % 2 == 0 else reversed(list(runs)):
                log(f"P4: round {i + 1}/{rounds}, {name}, {steps} steps")
                ends = runs[name]()
                if len(ends) != steps:
                    raise RuntimeError(f"{name} ran {len(ends)} steps, expected {steps}")
                rates[name] += step_rates(ends, batch)
    med = {name: statistics.median(v) for name, v in rates.items()}
    notes = [
        f"{cfg.model.backbone} at {cfg.data.image_size}px (frozen: {list(cfg.model.freeze)}), batch {batch}, "
        f"{steps} steps per run, {rounds} run(s) per side, median of {len(rates['plain'])} per-step rates "
        f"per side, "
        f"CPU fp32, torch threads {torch.get_num_threads()}",
        f"data: {len(dm.split.train)} training images of {data}",
    ]
    return figure(
        "P4",
        "Lightning ÷ hand-written loop, training images/s",
        ("Lightning", round(med["lightning"], 2), "img/s"),
        ("plain loop", round(med["plain"], 2), "img/s"),
        med["lightning"] / med["plain"],
        ">= 0.9",
        notes,
        {"images_per_s": rates},
    )


def main(argv: list[str] | None = None) -> int:
    """Run P4 and print the figure."""
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default 6, quick 3)")
    p.add_argument("--rounds", type=int, default=None, help="runs per side (default 2, quick 1)")
    args = p.parse_args(argv)
    steps, rounds = args.steps or (3 if args.quick else 6), args.rounds or (1 if args.quick else 2)
    emit([measure(data_path(args.data), steps, rounds)], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scheduled retraining: ``python -m desktop_trainer.retrain --agent URL [--min-new-labels N] [--force]``.

1. Pull the agent's dataset into the trainer's cache (``desktop_trainer.data.agent``: only new files).
2. Ask the board for its model versions (``GET /api/v1/model``, ``/api/v1/models``) and decide: train
   when there is no champion, when no model on the board was trained on this dataset, or when the
   dataset has at least ``--min-new-labels`` more labelled samples than the newest model trained on it
   (its card's ``dataset_id`` and ``samples``); otherwise say why there is nothing to do.
3. Train (``python -m desktop_trainer +experiment=<experiment> data.source=<agent>``), print this run's
   test scores next to the champion card's.
4. Deploy the model as the challenger with ``deploy/deploy_model.sh`` (RDK_HOST, RDK_DIR, ... from the
   environment, as ``make deploy-model``) and print the board's verdict.

Exit status: 0 nothing to do, or deployed and promoted or waiting; 2 the agent or the data is unusable;
otherwise the trainer's or deploy-model's status (3: the board refused the model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_module

from desktop_trainer.data.agent import TOKEN_ENV, AgentClient, sync_agent
from desktop_trainer.data.cache import ObjectCache
from desktop_trainer.data.samples import DataError, LocalDataset

REPO = Path(__file__).resolve().parents[1]
DEPLOY_SCRIPT = REPO / "deploy" / "deploy_model.sh"


class BoardClient(AgentClient):
    """The agent's model endpoints, with the same token and errors as the dataset sync."""

    def json(self, path: str) -> dict:
        """GET /api/v1/<path> as JSON (DataError when the agent cannot be reached or refuses)."""
        return self._get(path).json()

    def versions(self) -> tuple[dict | None, list[dict]]:
        """The champion version (or None) and every kept version, newest first."""
        status = self.json("model")
        if "champion" not in status:
            raise DataError(f"agent {self.url} has no model registry (GET /api/v1/model has no champion); update it")
        return status["champion"], self.json("models")["versions"]


@dataclass(frozen=True)
class Plan:
    """Whether to train, and the sentence that says why."""

    train: bool
    reason: str


def _card(version: dict) -> dict:
    return version.get("card") or {}


def plan(dataset: LocalDataset, champion: dict | None, versions: list[dict], min_new: int, force: bool) -> Plan:
    """Train or not: the dataset's labelled samples against the newest model the board has from this dataset."""
    count = len(dataset.samples)
    if force:
        return Plan(True, f"--force: training on {count} labelled samples")
    if champion is None:
        return Plan(True, f"no champion on the board: training the first model on {count} labelled samples")
    same = [v for v in versions if _card(v).get("dataset_id") == dataset.dataset_id]
    counted = [v for v in same if isinstance(_card(v).get("sample_count"), int)]
    if not counted:
        origin = _card(champion).get("dataset_id")
        where = "no card names its sample count" if same else f"the champion came from dataset {origin}"
        return Plan(True, f"no model on the board was trained on dataset {dataset.dataset_id} ({where}): training")
    newest = max(counted, key=lambda v: _card(v)["sample_count"])
    base = _card(newest)["sample_count"]
    grown = count - base
    if grown >= min_new:
        return Plan(True, f"{count} labelled samples, {grown} more than the {newest['state']} {_short(newest)} had")
    return Plan(
        False,
        f"nothing to do: dataset {dataset.dataset_id} has {count} labelled samples, {grown:+d} since the {base} "
        f"that the {newest['state']} {_short(newest)} was trained on (fewer than --min-new-labels {min_new}); "
        "label more frames, or --force",
    )


def _short(version: dict) -> str:
    return f"{version.get('name') or '?'} ({version['sha256'][:12]}…)"


def train(url: str, token: str, experiment: str, run_dir: Path, overrides: list[str]) -> dict:
    """Run the trainer on the agent's dataset into ``run_dir``; metrics.json's content (SystemExit on failure)."""
    cmd = [
        sys.executable,
        "-m",
        "desktop_trainer",
        f"+experiment={experiment}",
        f"data.source={url}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    print("retrain: $ " + " ".join(cmd[1:]), flush=True)
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, TOKEN_ENV: token, "PYTHONPATH": path}
    code = subprocess.call(cmd, env=env)
    if code != 0:
        raise SystemExit(code)
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


def compare(metrics: dict, champion: dict | None) -> None:
    """This run's test scores next to those the champion's card claims (each on its own test split)."""
    mine = metrics["test"]
    print(f"retrain: {'test split':<26}{'accuracy':>10}{'macro-F1':>10}{'samples':>9}")
    acc, f1 = mine.get("accuracy", 0), mine.get("macro_f1", 0)
    print(f"retrain: {'this run':<26}{acc:>10.4f}{f1:>10.4f}{mine.get('count', '?')!s:>9}")
    if champion is None:
        print("retrain: no champion on the board to compare with")
        return
    theirs = (_card(champion).get("metrics") or {}).get("test") or {}
    label = f"champion {champion['sha256'][:12]}…"
    acc, f1 = (_figure(theirs.get(k)) for k in ("accuracy", "macro_f1"))
    print(f"retrain: {label:<26}{acc:>10}{f1:>10}{_card(champion).get('sample_count', '?')!s:>9}")
    print("retrain: (different test splits; the board judges both on its own golden set)")


def _figure(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def deploy(model: Path, token: str) -> int:
    """``deploy/deploy_model.sh`` with this environment's RDK_* settings; its exit status."""
    env = {**os.environ, "MODEL": str(model), "RDK_AGENT_TOKEN": token, "PYTHON": sys.executable}
    print(f"retrain: deploying {model} as the challenger (RDK_HOST={env.get('RDK_HOST', '')})", flush=True)
    return subprocess.call(["bash", str(DEPLOY_SCRIPT)], env=env)


def sync(url: str, token: str, experiment: str, overrides: list[str]) -> LocalDataset:
    """The agent's dataset in the trainer's cache (the ``data.cache_dir`` the training run will use)."""
    with initialize_config_module("desktop_trainer.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={experiment}", *overrides])
    return sync_agent(url, ObjectCache(cfg.data.cache_dir), token=token, progress=sys.stderr.isatty())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m desktop_trainer.retrain", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agent", required=True, help="the board agent's URL, e.g. http://192.168.1.10:8080")
    parser.add_argument("--token", default=None, help=f"the agent's API token (default: ${TOKEN_ENV})")
    parser.add_argument("--min-new-labels", type=int, default=50, help="labelled samples added since the last model")
    parser.add_argument("--force", action="store_true", help="train even when the dataset has not grown enough")
    parser.add_argument("--experiment", default="baseline", help="the trainer's +experiment (default baseline)")
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs/retrain/runs"), help="one run folder each")
    parser.add_argument("--no-deploy", action="store_true", help="train, but leave the model on the desktop")
    parser.add_argument("--dry-run", action="store_true", help="only say whether a run would train")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the trainer (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV, "")
    try:
        board = BoardClient(args.agent, token)  # DataError without a token
        champion, versions = board.versions()
        dataset = sync(board.url, token, args.experiment, args.overrides)
    except DataError as exc:
        print(f"retrain: error: {exc}", file=sys.stderr)
        return 2
    decision = plan(dataset, champion, versions, args.min_new_labels, args.force)
    print(f"retrain: {decision.reason}", flush=True)
    if not decision.train or args.dry_run:
        return 0
    run_dir = (args.runs_dir / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    metrics = train(board.url, token, args.experiment, run_dir, args.overrides)
    compare(metrics, champion)
    model = run_dir / "model.onnx"
    if args.no_deploy:
        print(f"retrain: --no-deploy: the model stays at {model}")
        return 0
    return deploy(model, token)


if __name__ == "__main__":
    sys.exit(main())

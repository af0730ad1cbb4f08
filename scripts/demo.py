"""The whole loop on one machine: collect on a "board" agent, train on the "desktop", deploy, inspect, retrain.

``make demo`` runs this. It starts a real agent (synthetic camera) under ``var/demo/board``, collects
a first batch of labelled frames through its HTTP API and shows a rules-only inspection. Round 1:
``python -m desktop_trainer.retrain`` (what ``make retrain`` runs) pulls the dataset over HTTP, trains a
quick first model and deploys it with ``deploy/deploy_model.sh`` (the rsync path of ``make
deploy-model``, to the local agent): the board scores it on its golden set and promotes it, the first
model. Round 2: more frames are collected, retrain sees the dataset grew and trains the full recipe,
the board scores the challenger against the champion on the golden set and runs it in shadow on
fresh inspections, and its verdict (with both golden scores) is printed. Last, ML and rules are
compared on fresh frames. Every training run is tracked in MLflow (``<workdir>/mlflow``). The agent
keeps running at the end so you can open its page; ``make demo-stop`` stops it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

from rdk_agent.launcher import AgentProcess

REPO = Path(__file__).resolve().parent.parent
LABELS = ("good", "porosity", "spatter", "gap", "undercut")


STARTED = time.monotonic()
STEPS = [8]  # the number of steps, set by main (5 with --rounds 1)


def step(number: int, text: str) -> None:
    """Print a step heading with the time since the demo started."""
    print(f"\n\033[1m[{number}/{STEPS[0]}] {text}\033[0m  (at {time.monotonic() - STARTED:.0f} s)", flush=True)


def progress(done: int, total: int, what: str) -> None:
    """A one-line progress bar on a terminal; in a log, a line at every quarter."""
    if not sys.stdout.isatty():
        if done == total or done * 4 // total != (done - 1) * 4 // total:
            print(f"  {done}/{total} {what}", flush=True)
        return
    width = 30
    filled = int(width * done / max(total, 1))
    end = "\n" if done >= total else ""
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}", end=end, flush=True)


class Agent:
    """The demo's board: a real ``python -m rdk_agent`` process in the background."""

    def __init__(self, board: Path, port: int, token: str) -> None:
        self.board, self.port, self.token = board, port, token
        self.url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.pid_file = board / "agent.pid"

    def start(self) -> None:
        """Start the agent detached (it outlives this script) and wait for /healthz."""
        stop_previous(self.pid_file)
        for sub in ("data", "models"):  # each demo collects and trains from scratch: no frames of an earlier run
            shutil.rmtree(self.board / sub, ignore_errors=True)
        for sub in ("data", "models", "etc"):
            (self.board / sub).mkdir(parents=True, exist_ok=True)
        # The same settings file deploy-rdk writes on a board; deploy-model reads the port and token from it.
        (self.board / "etc" / "agent.env").write_text(
            f'RDK_AGENT_HOST="127.0.0.1"\nRDK_AGENT_PORT="{self.port}"\nRDK_AGENT_TOKEN="{self.token}"\n'
        )
        process = AgentProcess(
            self.board / "data",
            self.board / "models",
            token=self.token,
            cwd=REPO,
            port=self.port,
            log_path=self.board / "agent.log",
            detach=True,
        )
        try:
            process.start(timeout=60)
        except RuntimeError as exc:
            sys.exit(f"{exc}\n(log: {self.board / 'agent.log'})")
        self.pid_file.write_text(str(process.pid))

    def call(self, method: str, path: str, **kwargs) -> dict:
        """One API call; exits with the agent's error message on failure."""
        reply = self.http.request(method, f"{self.url}/api/v1/{path}", timeout=60, **kwargs)
        if not reply.ok:
            sys.exit(f"{method} {path} failed: HTTP {reply.status_code} {reply.text[:300]}")
        return reply.json()

    def show(self, label: str) -> None:
        """Put a part with this defect in front of the synthetic camera."""
        self.call("POST", "camera/scene", json={"label": label})


def stop_previous(pid_file: Path) -> None:
    """Stop an agent left running by an earlier demo."""
    try:
        pid = int(pid_file.read_text())
        os.killpg(pid, signal.SIGTERM)
        print(f"  stopped the previous demo agent (pid {pid})")
        time.sleep(1.0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        pass


def collect(agent: Agent, per_label: int) -> None:
    """Capture ``per_label`` frames of every label through the HTTP API, as an operator would."""
    total = per_label * len(LABELS)
    done = 0
    for label in LABELS:
        for _ in range(per_label):
            agent.show(label)
            agent.call("POST", "captures", json={"label": label})
            done += 1
            progress(done, total, f"captures ({label})")
    stats = agent.call("GET", "dataset/stats")
    print(f"  dataset on the board: {json.dumps(stats.get('counts', stats))}")


def describe(result: dict) -> str:
    """One line for an inspection result."""
    reason = f", reason={result['fallback_reason']}" if result.get("fallback_reason") else ""
    conf = result.get("confidence")
    conf_text = f", confidence={conf:.2f}" if isinstance(conf, (int, float)) else ""
    total = result.get("latency_ms", {}).get("total")
    return f"label={result['label']}{conf_text}, engine={result['engine']}{reason}, {total} ms"


def retrain(agent: Agent, workdir: Path, name: str, experiment: str, min_new: int, overrides: list[str]) -> Path:
    """``python -m desktop_trainer.retrain`` against the agent, deploying to the local board dir (RDK_HOST=local):
    pull, decide, train, compare, deploy-model and the board's verdict. Returns the trained model."""
    runs = workdir / name
    cmd = [sys.executable, "-m", "desktop_trainer.retrain", "--agent", agent.url, "--experiment", experiment]
    cmd += ["--runs-dir", str(runs), "--min-new-labels", str(min_new), "--", *overrides]
    print("  $ RDK_HOST=local RDK_AGENT_TOKEN=… " + " ".join(cmd[1:]), flush=True)
    env = {
        **os.environ,
        "RDK_HOST": "local",
        "RDK_DIR": str(agent.board),
        "RDK_AGENT_TOKEN": agent.token,
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}"),
    }
    started = time.monotonic()
    code = subprocess.call(cmd, cwd=REPO, env=env)
    if code not in (0, 3):  # 3: the board refused the model, which the demo shows as it is
        sys.exit(f"retrain failed with status {code}")
    models = sorted(runs.glob("*/model.onnx"))
    if not models:
        sys.exit(f"retrain finished but trained nothing into {runs}")
    print(f"  round done in {time.monotonic() - started:.0f} s -> {models[-1]}")
    return models[-1]


def deploy_again(agent: Agent, model: Path) -> None:
    """deploy-model once more with the same file: nothing is copied, it prints the board's verdict now."""
    env = {**os.environ, "RDK_HOST": "local", "RDK_DIR": str(agent.board), "MODEL": str(model)}
    env.update(RDK_AGENT_TOKEN=agent.token, RDK_MODEL_TIMEOUT="120")
    subprocess.call(["bash", str(REPO / "deploy" / "deploy_model.sh")], cwd=REPO, env=env)


def shadow(agent: Agent, sha: str, seed: int, limit: int) -> dict:
    """Inspect fresh frames while the challenger ``sha`` runs in shadow, until the board decides (or ``limit``
    frames); returns the version. The champion answers every one; the challenger's answer is recorded."""
    version = agent.call("GET", f"models/{sha}")
    done = 0
    while version["state"] == "challenger" and version.get("verdict") is None and done < limit:
        for label in LABELS:
            agent.call("POST", "camera/scene", json={"label": label, "seed": seed})
            agent.call("POST", "inspect", json={})
            done += 1
        version = agent.call("GET", f"models/{sha}")
        shadow_info = version["shadow"]
        print(
            f"  {done} frames inspected; the challenger ran on {shadow_info['frames']}, disagreed on "
            f"{shadow_info['disagreements']}: {version['reason']}",
            flush=True,
        )
    deadline = time.monotonic() + 60  # the board judges within its golden_check_s once the frames are in
    while version["state"] == "challenger" and version.get("verdict") is None and time.monotonic() < deadline:
        time.sleep(0.5)
        version = agent.call("GET", f"models/{sha}")
    return version


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (the board's name for a model version)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def round_summary(agent: Agent, model: Path) -> dict:
    """What the board holds about a round's model: state, reason, golden scores, verdict."""
    version = agent.call("GET", f"models/{file_sha256(model)}")
    keep = ("sha256", "state", "reason", "golden", "verdict")
    return {"model": str(model), **{k: version.get(k) for k in keep}, "shadow_frames": version["shadow"]["frames"]}


def compare(agent: Agent, per_label: int, seed: int) -> dict:
    """Inspect fresh frames (parts from generator ``seed``) of every label: model and rules on the same frames."""
    hits: dict[str, Counter] = {engine: Counter() for engine in ("onnx", "rules", "served")}
    engines: Counter = Counter()
    reviewed = model_ran = 0
    total = per_label * len(LABELS)
    done = 0
    frames_before = agent.call("GET", "status")["camera"]["frames"]
    for label in LABELS:
        for _ in range(per_label):
            # setting the scene drops the camera's cached frame: every inspection sees a new part (two
            # inspections within the agent's 0.1 s frame sharing would otherwise judge one frame twice)
            agent.call("POST", "camera/scene", json={"label": label, "seed": seed})
            result = agent.call("POST", "inspect", json={})
            engines[result["engine"]] += 1
            hits["onnx"][label] += int((result.get("onnx") or {}).get("label") == label)
            hits["rules"][label] += int((result.get("rules") or {}).get("label") == label)
            hits["served"][label] += int(result["label"] == label)
            model_ran += int(result.get("onnx") is not None)
            reviewed += int(result.get("review_capture_id") is not None)
            done += 1
            progress(done, total, "fresh frames inspected")
    rendered = agent.call("GET", "status")["camera"]["frames"] - frames_before
    if rendered != total:
        print(f"  warning: the camera rendered {rendered} frames for {total} inspections")
    summary = {f"{engine}_accuracy": sum(c.values()) / total for engine, c in hits.items()}
    summary["per_class"] = {label: {engine: hits[engine][label] / per_label for engine in hits} for label in LABELS}
    summary.update(
        frames=total, distinct_frames=rendered, seed=seed, model_ran=model_ran, reviewed=reviewed, engines=dict(engines)
    )
    return summary


def print_comparison(summary: dict) -> None:
    """Per-class accuracy of the model and of the rules on the same fresh frames."""
    print(f"\n  {'label':<10} {'model':>7} {'rules':>7}   (fresh frames, generator seed {summary['seed']})")
    for label, acc in summary["per_class"].items():
        print(f"  {label:<10} {acc['onnx']:>7.0%} {acc['rules']:>7.0%}")
    print(f"  {'all':<10} {summary['onnx_accuracy']:>7.1%} {summary['rules_accuracy']:>7.1%}")
    print(f"\n  Served by: {summary['engines']}; accuracy of what was served {summary['served_accuracy']:.1%}")
    print(f"  Sent to the review queue: {summary['reviewed']} of {summary['frames']} frames")


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "demo")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8765")))
    parser.add_argument("--per-label", type=int, default=160, help="captures per label, both rounds together")
    parser.add_argument("--first-per-label", type=int, default=80, help="captures per label before round 1")
    parser.add_argument("--first-epochs", type=int, default=2, help="round 1's epochs (round 2: the experiment's)")
    parser.add_argument("--rounds", type=int, choices=(1, 2), default=2, help="1: one training on every frame")
    parser.add_argument("--shadow-seed", type=int, default=2000, help="generator seed of the shadow frames")
    parser.add_argument("--eval-per-label", type=int, default=40, help="fresh frames per label for the comparison")
    parser.add_argument("--eval-seed", type=int, default=1000, help="generator seed of the fresh frames")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--stop", action="store_true", help="stop the agent at the end instead of leaving it up")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the trainer")
    args = parser.parse_args(argv)
    two = args.rounds == 2
    STEPS[0] = 8 if two else 5
    first = args.first_per_label if two else args.per_label

    workdir = args.workdir.resolve()
    for name in ("round1", "round2"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    agent = Agent(workdir / "board", args.port, secrets.token_urlsafe(24))
    step(1, f"Starting the board agent (synthetic camera) at {agent.url}")
    agent.start()
    print(f"  data: {agent.board / 'data'}   models: {agent.board / 'models'}   log: {agent.board / 'agent.log'}")

    step(2, f"Collecting {first} labelled frames per label through the HTTP API")
    collect(agent, first)

    step(3, "Inspecting before any model is deployed")
    agent.show("porosity")
    print("  " + describe(agent.call("POST", "inspect", json={})))

    quick = [f"trainer.max_epochs={args.first_epochs}"] if two else []
    step(4, "Round 1: make retrain: pull the dataset over HTTP, train, deploy-model, the board's verdict")
    model = retrain(agent, workdir, "round1", args.experiment, 0, [*args.overrides, *quick])
    rounds = [round_summary(agent, model)]
    n = 5
    if two:
        step(5, f"Collecting {args.per_label - first} more labelled frames per label")
        collect(agent, args.per_label - first)
        step(6, "Round 2: make retrain on the grown dataset; the board judges the challenger on its golden set")
        model = retrain(agent, workdir, "round2", args.experiment, 1, args.overrides)
        sha = file_sha256(model)
        step(7, "Shadow: fresh inspections, the champion answers and the challenger runs beside it")
        limit = agent.call("GET", "model")["settings"]["shadow_frames"] + 25
        version = shadow(agent, sha, args.shadow_seed, limit)
        if version["state"] != "refused":
            deploy_again(agent, model)
        rounds.append(round_summary(agent, model))
        n = 8

    step(n, f"Inspecting {args.eval_per_label} fresh frames per label: model vs rules on the same frames")
    agent.show("spatter")
    print("  " + describe(agent.call("POST", "inspect", json={})))
    summary = compare(agent, args.eval_per_label, args.eval_seed)
    summary["rounds"] = rounds
    summary["served_model"] = (agent.call("GET", "model")["active"] or {}).get("sha256")
    summary["wall_s"] = round(time.monotonic() - STARTED, 1)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print_comparison(summary)
    print(f"  Whole demo: {summary['wall_s']:.0f} s")
    print(f"\n  Reports:       {', '.join(str(Path(r['model']).parent / 'report') for r in rounds)}")
    print(f"  Summary:       {workdir / 'summary.json'}")
    print(f"  MLflow runs:   {workdir / 'mlflow'} (the model cards' provenance.mlflow_run_id)")
    if args.stop:
        stop_previous(agent.pid_file)
    else:
        print(f"  Operator page: {agent.url}/?token={agent.token}")
        print("  The agent keeps running; stop it with: make demo-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())

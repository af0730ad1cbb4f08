"""The whole loop on one machine: collect on a "board" agent, train on the "desktop", deploy, inspect.

``make demo`` runs this. It starts a real agent (synthetic camera) under ``var/demo/board``, collects
a labelled dataset through its HTTP API, shows a rules-only inspection, trains with
``python -m desktop_trainer`` pulling the dataset over HTTP, deploys ``model.onnx`` with the same
rsync path as ``make deploy-model`` (to the local agent), and compares ML and rules on fresh frames.
The agent keeps running at the end so you can open its page; ``make demo-stop`` stops it.
"""

from __future__ import annotations

import argparse
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


def step(number: int, text: str) -> None:
    """Print a step heading with the time since the demo started."""
    print(f"\n\033[1m[{number}/6] {text}\033[0m  (at {time.monotonic() - STARTED:.0f} s)", flush=True)


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


def train(agent: Agent, run_dir: Path, experiment: str, overrides: list[str]) -> Path:
    """Run the desktop trainer against the agent over HTTP; returns the exported model path."""
    cmd = [
        sys.executable,
        "-m",
        "desktop_trainer",
        f"+experiment={experiment}",
        f"data.source={agent.url}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    print("  $ RDK_AGENT_TOKEN=… " + " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "RDK_AGENT_TOKEN": agent.token, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    code = subprocess.call(cmd, cwd=REPO, env=env)
    if code != 0:
        sys.exit(f"training failed with status {code}")
    model = run_dir / "model.onnx"
    if not model.exists():
        sys.exit(f"training finished but {model} is missing")
    print(f"  trained in {time.monotonic() - started:.0f} s -> {model}")
    return model


def deploy(agent: Agent, model: Path) -> None:
    """Ship the model with deploy-model's rsync path, to the local board dir."""
    env = {
        **os.environ,
        "RDK_HOST": "local",
        "RDK_DIR": str(agent.board),
        "MODEL": str(model),
        "RDK_AGENT_TOKEN": agent.token,
    }
    code = subprocess.call(["bash", str(REPO / "deploy" / "deploy_model.sh")], cwd=REPO, env=env)
    if code != 0:
        sys.exit(f"deploy-model failed with status {code}")


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
    parser.add_argument("--per-label", type=int, default=160, help="captures per label")
    parser.add_argument("--eval-per-label", type=int, default=40, help="fresh frames per label for the comparison")
    parser.add_argument("--eval-seed", type=int, default=1000, help="generator seed of the fresh frames")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--stop", action="store_true", help="stop the agent at the end instead of leaving it up")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the trainer")
    args = parser.parse_args(argv)

    workdir = args.workdir.resolve()
    agent = Agent(workdir / "board", args.port, secrets.token_urlsafe(24))
    step(1, f"Starting the board agent (synthetic camera) at {agent.url}")
    agent.start()
    print(f"  data: {agent.board / 'data'}   models: {agent.board / 'models'}   log: {agent.board / 'agent.log'}")

    step(2, f"Collecting {args.per_label} labelled frames per label through the HTTP API")
    collect(agent, args.per_label)

    step(3, "Inspecting before any model is deployed")
    agent.show("porosity")
    print("  " + describe(agent.call("POST", "inspect", json={})))

    step(4, "Training on the desktop from the agent's dataset (HTTP download, verified by sha256)")
    model = train(agent, workdir / "train", args.experiment, args.overrides)

    step(5, "Deploying model.onnx to the board with deploy-model's rsync path")
    deploy(agent, model)

    step(6, f"Inspecting {args.eval_per_label} fresh frames per label: model vs rules on the same frames")
    agent.show("spatter")
    print("  " + describe(agent.call("POST", "inspect", json={})))
    summary = compare(agent, args.eval_per_label, args.eval_seed)
    summary["wall_s"] = round(time.monotonic() - STARTED, 1)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print_comparison(summary)
    print(f"  Whole demo: {summary['wall_s']:.0f} s")
    print(f"\n  Report:        {workdir / 'train' / 'report'}")
    print(f"  Summary:       {workdir / 'summary.json'}")
    if args.stop:
        stop_previous(agent.pid_file)
    else:
        print(f"  Operator page: {agent.url}/?token={agent.token}")
        print("  The agent keeps running; stop it with: make demo-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())

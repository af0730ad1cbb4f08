// The agent/model status line and the camera indicator over the live preview.

import { api, describeError } from "./api.js";

const RETRY_MS = 2000;
const MODEL_STATES = {
  serving_previous: "new model file refused",
  failed: "model failed to load",
  no_model: "no model deployed",
};

function errorText(error) {
  if (!error) return undefined;
  return error.message ? `${error.reason || error.code}: ${error.message}` : String(error);
}

function setChip(id, text, state, title) {
  const chip = document.getElementById(id);
  const target = chip.querySelector(".chip-text") || chip;
  target.textContent = text;
  chip.dataset.state = state || "";
  chip.title = title || text;
}

function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

/** The live MJPEG preview; reconnects by itself after the stream drops. */
export class LivePreview {
  constructor() {
    this.img = document.getElementById("live");
    this.timer = null;
    this.running = false;
    this.view = "rgb";
    this.img.addEventListener("error", () => this.retry());
    const depth = document.getElementById("depth-view");
    depth.addEventListener("change", () => {
      this.view = depth.checked ? "depth" : "rgb";
      if (this.running) this.start();
    });
  }

  start() {
    clearTimeout(this.timer);
    this.running = true;
    this.img.src = `/api/v1/stream.mjpg?view=${this.view}&t=${Date.now()}`;
  }

  /** Close the stream (hidden tab, logout): each viewer holds one of the agent's few stream slots. */
  stop() {
    clearTimeout(this.timer);
    this.running = false;
    this.img.removeAttribute("src");
  }

  retry() {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.start(), RETRY_MS);
  }
}

/** Camera state from any source: synthetic reports `ok`, opencv and replay report `connected`. */
export function cameraLost(camera) {
  return camera.ok === false || camera.connected === false;
}

export class StatusLine {
  constructor() {
    this.banner = document.getElementById("camera-banner");
    this.modelKey = null;
    this.modelDetail = null;
    this.liveInspection = false;
  }

  /** Fetch /status (and /model when the model changed) and redraw the line; returns the status or null. */
  async refresh() {
    let status;
    try {
      status = await api("GET", "/status");
    } catch (err) {
      setChip("st-agent", describeError(err), "bad");
      return null;
    }
    const model = status.model || {};
    const key = `${model.state}:${model.sha256}`;
    if (key !== this.modelKey) {
      this.modelDetail = await api("GET", "/model").catch(() => null);
      this.modelKey = key;
    }
    this.show(status);
    return status;
  }

  show(status) {
    const agent = status.agent || {};
    setChip("st-agent", "agent " + (agent.version || "?"), "ok", `camera spec ${agent.camera_spec || "?"}`);

    const camera = status.camera || {};
    const lost = cameraLost(camera);
    const message = camera.last_error || "no frames";
    setChip("st-camera", lost ? "camera lost" : "camera " + (camera.kind || "connected"), lost ? "bad" : "ok",
      lost ? message : undefined);
    this.banner.hidden = !lost;
    this.banner.parentElement.classList.toggle("lost", lost);
    this.banner.textContent = lost ? `Camera lost: ${message}. Retrying…` : "";
    document.getElementById("depth-toggle").hidden = !camera.has_depth;

    this.showModel(status.model || {});
    this.liveInspection = Boolean(status.model && status.model.live_inspection);

    const dataset = status.dataset || {};
    const review = dataset.unlabelled ? ` · ${dataset.unlabelled} to review` : "";
    setChip("st-dataset", `dataset ${dataset.total ?? 0} · ${formatBytes(dataset.total_bytes || 0)}${review}`, "");
  }

  showModel(model) {
    const detail = this.modelDetail || {};
    const card = detail.active && detail.active.card;
    const name = card ? card.name || "model" : "model";
    const sha = model.sha256 ? model.sha256.slice(0, 8) : "";
    if (model.state === "active") {
      setChip("st-model", `${name} ${sha}`.trim(), "ok", `ONNX model active, sha256 ${model.sha256}`);
    } else if (model.state === "serving_previous") {
      setChip("st-model", `${name} ${sha} · ${MODEL_STATES.serving_previous}`, "warn", errorText(detail.last_error));
    } else {
      const error = detail.last_error;
      const reason = (error && error.reason) || MODEL_STATES[model.state] || model.state || "no model";
      setChip("st-model", `rules only · ${reason}`, "warn", errorText(detail.last_error) || reason);
    }
  }
}

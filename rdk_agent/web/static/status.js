// The agent/model status line and the camera indicator over the live preview.

import { api, describeError } from "./api.js";

const RETRY_MS = 2000;

function setChip(id, text, state) {
  const chip = document.getElementById(id);
  const target = chip.querySelector(".chip-text") || chip;
  target.textContent = text;
  chip.dataset.state = state || "";
}

/** The live MJPEG preview; reconnects by itself after the stream drops. */
export class LivePreview {
  constructor() {
    this.img = document.getElementById("live");
    this.timer = null;
    this.img.addEventListener("error", () => this.retry());
  }

  start() {
    clearTimeout(this.timer);
    this.img.src = "/api/v1/stream.mjpg?t=" + Date.now();
  }

  stop() {
    clearTimeout(this.timer);
    this.img.removeAttribute("src");
  }

  retry() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), RETRY_MS);
  }
}

export class StatusLine {
  constructor({ onCameraBack }) {
    this.banner = document.getElementById("camera-banner");
    this.onCameraBack = onCameraBack;
    this.cameraOk = true;
  }

  /** Fetch /status and redraw the line; returns the status or null. */
  async refresh() {
    let status;
    try {
      status = await api("GET", "/status");
    } catch (err) {
      setChip("st-agent", describeError(err), "bad");
      return null;
    }
    this.show(status);
    return status;
  }

  show(status) {
    setChip("st-agent", "agent " + (status.version || "?"), "ok");

    const camera = status.camera || {};
    const ok = camera.ok !== false;
    setChip("st-camera", ok ? "camera " + (camera.kind || "connected") : "camera lost", ok ? "ok" : "bad");
    this.banner.hidden = ok;
    this.banner.textContent = ok ? "" : "Camera lost: " + (camera.message || "no frames") + " — retrying…";
    if (ok && !this.cameraOk) this.onCameraBack();
    this.cameraOk = ok;

    const model = status.model || {};
    if (model.active) {
      setChip("st-model", "model " + (model.name || model.sha256?.slice(0, 8) || "active"), "ok");
    } else {
      setChip("st-model", "rules only" + (model.reason ? " · " + model.reason : ""), "warn");
    }

    const dataset = status.dataset || {};
    setChip("st-dataset", `dataset ${dataset.captures ?? 0}`, "");
  }
}

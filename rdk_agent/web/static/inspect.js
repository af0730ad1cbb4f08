// The inspection panel: run an inspection of the live frame and show what decided and why.

import { api, describeError } from "./api.js";
import { toast } from "./toasts.js";

const REASONS = {
  no_model: "no model deployed",
  load_failed: "model failed to load",
  schema_mismatch: "model built for another label schema",
  inference_error: "model inference failed",
  timeout: "model too slow",
  low_confidence: "model not confident enough",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtNumber(value) {
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

export class InspectPanel {
  constructor(labels) {
    this.colours = new Map(labels.map((l) => [l.name, l.colour]));
    this.root = document.getElementById("inspect-result");
    this.button = document.getElementById("inspect-btn");
    this.button.addEventListener("click", () => this.inspect());
    this.shownAt = null;
    this.overlay = document.getElementById("heatmap-overlay");
    this.mapVisible = true;
  }

  /** Inspect the current camera frame. */
  async inspect() {
    this.button.disabled = true;
    this.root.classList.add("loading");
    try {
      this.show(await api("POST", "/inspect", {}));
    } catch (err) {
      toast("Inspection failed. " + describeError(err), "error");
    } finally {
      this.button.disabled = false;
      this.root.classList.remove("loading");
    }
  }

  /** Show the latest result of the agent's continuous inspection, if it runs one. */
  async refreshLatest() {
    try {
      const result = await api("GET", "/inspect/latest");
      if (result && result.timestamp !== this.shownAt) this.show(result);
    } catch (err) {
      if (err.status !== 404 && err.status !== 401) toast("Latest inspection: " + describeError(err), "error");
    }
  }

  show(result) {
    this.shownAt = result.timestamp;
    const head = el("div", "verdict");
    head.style.setProperty("--c", this.colours.get(result.label) || "var(--muted)");
    head.append(el("span", "verdict-label", result.label || "—"));
    if (typeof result.confidence === "number") {
      const conf = el("span", "verdict-conf");
      conf.append(el("span", "verdict-pct", (100 * result.confidence).toFixed(1) + "%"),
        el("small", "", result.engine === "onnx" ? "confidence" : "rule score"));
      head.append(conf);
    }

    const engine = el("div", "engine");
    engine.append(el("span", "engine-badge engine-" + result.engine, result.engine));
    if (result.fallback_reason) {
      const why = el("span", "engine-reason", REASONS[result.fallback_reason] || result.fallback_reason);
      why.dataset.reason = result.fallback_reason;
      engine.append(why);
    }
    if (result.latency_ms) {
      const total = result.latency_ms.total ?? Object.values(result.latency_ms).reduce((a, b) => a + b, 0);
      engine.append(el("span", "latency muted", fmtNumber(total) + " ms"));
    }

    const probs = el("ul", "probs");
    const entries = Object.entries(result.probabilities || {}).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of entries) {
      const row = el("li", "prob");
      row.style.setProperty("--c", this.colours.get(name) || "var(--muted)");
      const bar = el("div", "bar");
      const fill = el("div", "bar-fill");
      fill.style.width = (100 * p).toFixed(1) + "%";
      bar.append(fill);
      row.append(el("span", "prob-name", name), bar, el("span", "prob-value", (100 * p).toFixed(1) + "%"));
      probs.append(row);
    }

    const measures = el("dl", "measures");
    const rules = result.rules || {};
    for (const [name, value] of Object.entries(rules.measures || {})) {
      if (value === null || typeof value === "object") continue;
      measures.append(el("dt", "", name.replaceAll("_", " ")), el("dd", "", fmtNumber(value)));
    }
    if (rules.label && rules.label !== result.label) {
      measures.append(el("dt", "", "rules say"), el("dd", "", rules.label));
    }

    const notes = el("ul", "notes");
    for (const reason of rules.reasons || []) notes.append(el("li", "", reason));
    if (result.error) notes.append(el("li", "error", `model error: ${result.error.message || result.error}`));
    if (result.review_capture_id) notes.append(el("li", "review-note", "Low confidence: queued for review"));
    if (result.heatmap) notes.append(this.heatmapNote(result.heatmap));

    this.root.replaceChildren(head, engine, probs, measures, notes);
    this.showHeatmap(result.heatmap);
  }

  /** Overlay the model's heat map (a small PNG covering the whole frame) on the preview, or clear it. */
  showHeatmap(heatmap) {
    if (!this.overlay) return;
    if (heatmap && heatmap.png) {
      this.overlay.src = "data:image/png;base64," + heatmap.png;
      this.overlay.dataset.label = heatmap.label;
      this.overlay.hidden = !this.mapVisible;
    } else {
      this.overlay.removeAttribute("src");
      delete this.overlay.dataset.label;
      this.overlay.hidden = true;
    }
  }

  /** "Heat map: where the model saw <label>", the peak in frame pixels, and a show/hide switch. */
  heatmapNote(heatmap) {
    const note = el("li", "heatmap-note",
      `Heat map: where the model saw ${heatmap.label}, peak at (${Math.round(heatmap.peak.x)}, ` +
      `${Math.round(heatmap.peak.y)}) px, ${heatmap.shape[1]}×${heatmap.shape[0]} cells`);
    const toggle = el("button", "btn btn-small", this.mapVisible ? "Hide map" : "Show map");
    toggle.type = "button";
    toggle.addEventListener("click", () => {
      this.mapVisible = !this.mapVisible;
      this.overlay.hidden = !this.mapVisible || !this.overlay.getAttribute("src");
      toggle.textContent = this.mapVisible ? "Hide map" : "Show map";
    });
    note.append(toggle);
    return note;
  }
}

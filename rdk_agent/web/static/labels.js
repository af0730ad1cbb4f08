// Label buttons, key bindings and the per-class progress against the target.

import { api, describeError } from "./api.js";
import { toast } from "./toasts.js";

const FALLBACK_COLOURS = ["#2e7d32", "#c62828", "#ef6c00", "#6a1b9a", "#1565c0", "#00838f", "#ad1457", "#558b2f"];

/** The schema's labels with a colour each (the schema's own, else a fixed palette). */
export function withColours(schema) {
  return schema.labels.map((label, i) => ({ ...label, colour: label.colour || FALLBACK_COLOURS[i % FALLBACK_COLOURS.length] }));
}

/** Buttons that capture with a label, one per label, plus the keyboard bindings. */
export class CapturePad {
  constructor(labels, { onCaptured, beforeCapture }) {
    this.labels = labels;
    this.onCaptured = onCaptured;
    this.beforeCapture = beforeCapture;
    this.pending = new Map(labels.map((l) => [l.name, 0]));
    this.buttons = new Map();
    this.byKey = new Map(labels.filter((l) => l.key).map((l) => [l.key.toLowerCase(), l]));
    this.render(document.getElementById("label-buttons"));
  }

  render(root) {
    root.replaceChildren();
    for (const label of this.labels) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "label-btn" + (label.is_defect ? " is-defect" : "");
      button.dataset.label = label.name;
      button.style.setProperty("--c", label.colour);
      if (label.description) button.title = label.description;
      const key = document.createElement("kbd");
      key.textContent = label.key || "";
      key.hidden = !label.key;
      const name = document.createElement("span");
      name.className = "label-name";
      name.textContent = label.name;
      const busy = document.createElement("span");
      busy.className = "label-busy";
      button.append(key, name, busy);
      button.addEventListener("click", () => this.capture(label));
      root.append(button);
      this.buttons.set(label.name, button);
    }
  }

  /** The label bound to a keyboard event, or undefined. */
  labelForKey(event) {
    return this.byKey.get(event.key.toLowerCase());
  }

  /** Capture the current frame with `label`. Never awaited by the caller: presses do not queue behind each other. */
  async capture(label) {
    this.setPending(label.name, +1);
    try {
      await this.beforeCapture(); // a group being set applies to this capture already
      const record = await api("POST", "/captures", { label: label.name });
      toast(`Captured ${label.name}` + (record && record.id ? ` · ${String(record.id).slice(0, 8)}` : ""), "ok",
        { colour: label.colour });
      this.onCaptured(record);
    } catch (err) {
      toast(`Capture ${label.name} failed. ${describeError(err)}`, "error");
    } finally {
      this.setPending(label.name, -1);
    }
  }

  setPending(name, delta) {
    const n = this.pending.get(name) + delta;
    this.pending.set(name, n);
    const button = this.buttons.get(name);
    button.classList.toggle("busy", n > 0);
    button.querySelector(".label-busy").textContent = n > 0 ? String(n) : "";
  }
}

/** Progress bars: captures per label against the target. */
export class Progress {
  constructor(labels) {
    this.labels = labels;
    this.root = document.getElementById("progress");
    this.total = document.getElementById("dataset-total");
    this.rows = new Map();
    for (const label of labels) {
      const li = document.createElement("li");
      li.className = "progress-row";
      li.dataset.label = label.name;
      li.style.setProperty("--c", label.colour);
      const name = document.createElement("span");
      name.className = "progress-name";
      name.textContent = label.name;
      const count = document.createElement("span");
      count.className = "progress-count";
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("div");
      fill.className = "bar-fill";
      bar.append(fill);
      li.append(name, count, bar);
      this.root.append(li);
      this.rows.set(label.name, { li, count, fill });
    }
  }

  /** Fetch dataset/stats and redraw. */
  async refresh() {
    try {
      this.show(await api("GET", "/dataset/stats"));
    } catch (err) {
      if (err.status !== 401) toast("Dataset stats: " + describeError(err), "error");
    }
  }

  show(stats) {
    for (const entry of stats.labels) {
      const row = this.rows.get(entry.name);
      if (!row) continue;
      row.count.textContent = `${entry.count} / ${entry.target}`;
      row.fill.style.width = Math.min(100, (100 * entry.count) / Math.max(1, entry.target)).toFixed(1) + "%";
      row.li.classList.toggle("done", entry.count >= entry.target);
      row.li.dataset.count = String(entry.count);
      row.li.title = entry.missing > 0 ? `${entry.missing} more needed` : "target reached";
    }
    const review = stats.unlabelled ? ` · ${stats.unlabelled} to review` : "";
    this.total.textContent = `${stats.labelled} labelled${review}`;
  }
}

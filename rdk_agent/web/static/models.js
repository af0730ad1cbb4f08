// The Models panel: every model version on the board, its state, golden-set scores and verdict,
// with Promote (a challenger or a retired version) and Roll back (to a retired version).

import { api, describeError } from "./api.js";
import { toast } from "./toasts.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function pct(value) {
  return typeof value === "number" ? (value * 100).toFixed(1) + "%" : "–";
}

function f1(value) {
  return typeof value === "number" ? value.toFixed(3) : "–";
}

export class ModelsPanel {
  constructor({ onChanged } = {}) {
    this.list = document.getElementById("models-list");
    this.empty = document.getElementById("models-empty");
    this.onChanged = onChanged || (() => {});
    this.busy = false;
    this.shown = "";
  }

  /** Fetch the versions and redraw when anything changed. */
  async refresh() {
    if (this.busy) return;
    let versions;
    try {
      versions = (await api("GET", "/models")).versions;
    } catch (err) {
      if (err.status !== 401) toast("Models: " + describeError(err), "error");
      return;
    }
    const key = JSON.stringify(versions.map((v) => [v.sha256, v.state, v.reason, v.golden, v.verdict]));
    if (key === this.shown) return;
    this.shown = key;
    this.list.replaceChildren(...versions.map((v) => this.row(v)));
    this.empty.hidden = versions.length > 0;
  }

  row(v) {
    const li = el("li", "model-row");
    li.dataset.sha256 = v.sha256;
    li.dataset.state = v.state;
    const head = el("div", "model-head");
    head.append(el("span", "model-name", `${v.name || "model"} ${v.sha256.slice(0, 8)}`));
    head.append(el("span", "model-state", v.state));
    li.append(head);
    const golden = v.golden;
    const scores = golden
      ? `golden: accuracy ${pct(golden.accuracy)}, macro-F1 ${f1(golden.macro_f1)} on ${golden.n}`
      : "golden: not scored yet";
    li.append(el("div", "model-golden muted", scores));
    if (v.verdict) {
      const verdict = el("div", "model-verdict");
      verdict.dataset.decision = v.verdict.decision;
      verdict.textContent = `${v.verdict.decision}: ${v.verdict.reason}`;
      li.append(verdict);
    } else if (v.reason) {
      li.append(el("div", "model-reason muted", v.reason));
    }
    const actions = el("div", "model-actions");
    if (v.state === "challenger" || v.state === "retired") {
      actions.append(this.button("Promote", "promote", { sha256: v.sha256 }));
    }
    if (v.state === "retired") {
      actions.append(this.button("Roll back", "rollback", { sha256: v.sha256 }));
    }
    if (actions.childElementCount) li.append(actions);
    return li;
  }

  button(text, action, body) {
    const b = el("button", "btn btn-small model-" + action, text);
    b.type = "button";
    b.addEventListener("click", () => this.act(action, body, b));
    return b;
  }

  async act(action, body, button) {
    this.busy = true;
    button.disabled = true;
    try {
      const status = await api("POST", "/model/" + action, body);
      toast(`Model ${status.active.sha256.slice(0, 8)} serves now`, "ok");
      this.onChanged();
    } catch (err) {
      toast((action === "promote" ? "Promotion" : "Rollback") + " refused. " + describeError(err), "error");
    } finally {
      this.busy = false;
      button.disabled = false;
      this.shown = "";
      await this.refresh();
    }
  }
}

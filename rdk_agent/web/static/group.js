// The current group (part, weld or batch id): set once, the agent gives it to every following capture.

import { api, describeError } from "./api.js";
import { toast } from "./toasts.js";

export class CurrentGroup {
  constructor() {
    this.form = document.getElementById("group-form");
    this.input = document.getElementById("group-input");
    this.current = null;
    this.requested = "";
    this.saving = Promise.resolve();
    // Enter (or Set) leaves the field; leaving it saves, so clicking a label button right after typing
    // saves first and that capture waits for it (see settled()).
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (document.activeElement === this.input) this.input.blur();
      else this.save();
    });
    this.input.addEventListener("change", () => this.save());
  }

  /** Fetch the agent's current group. */
  async load() {
    try {
      this.show((await api("GET", "/current-group")).group);
    } catch (err) {
      if (err.status !== 401) toast("Current group: " + describeError(err), "error");
    }
  }

  show(group) {
    this.current = group || null;
    this.requested = group || "";
    this.input.value = group || "";
    this.form.dataset.group = group || "";
  }

  /** Resolves once the last change of the group has reached the agent (or failed). */
  settled() {
    return this.saving;
  }

  save() {
    const wanted = this.input.value.trim();
    if (wanted === this.requested) {
      this.input.value = wanted;
      return this.saving;
    }
    this.requested = wanted;
    this.saving = this.saving.then(async () => {
      try {
        this.show((await api("PUT", "/current-group", { group: wanted || null })).group);
        toast(this.current ? `Group ${this.current}: following captures belong to it` : "No group for following captures", "ok");
      } catch (err) {
        this.show(this.current);
        toast("Group not set. " + describeError(err), "error");
      }
    });
    return this.saving;
  }
}

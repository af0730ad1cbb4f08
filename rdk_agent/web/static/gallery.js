// Gallery of recent captures: thumbnails, relabel, delete with a confirm step, filter, load more, and the
// golden set (the frozen evaluation captures): a star per card, and one per group, to put them in or out.

import { api, describeError } from "./api.js";
import { toast } from "./toasts.js";

const PAGE_SIZE = 24;
const REVIEW = "__review__";
const GOLDEN = "__golden__";
const CONFIRM_MS = 3000;

/** Format an ISO 8601 capture time compactly: the time today, else the date and time. */
function formatTime(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return date.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
}

export class Gallery {
  constructor(labels, { onChanged }) {
    this.labels = labels;
    this.colours = new Map(labels.map((l) => [l.name, l.colour]));
    this.onChanged = onChanged;
    this.list = document.getElementById("gallery");
    this.empty = document.getElementById("gallery-empty");
    this.more = document.getElementById("load-more");
    this.filter = document.getElementById("gallery-filter");
    this.offset = 0;
    this.generation = 0;
    this.buildFilter();
    this.filter.addEventListener("change", () => {
      this.filter.blur(); // hand the keyboard back to the label keys
      this.reload();
    });
    this.more.addEventListener("click", () => this.loadPage());
  }

  buildFilter() {
    const options = [["", "All labels"], [REVIEW, "Review queue (unlabelled)"], [GOLDEN, "Golden set"]]
      .concat(this.labels.map((l) => [l.name, l.name]));
    for (const [value, text] of options) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      this.filter.append(option);
    }
  }

  query() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(this.offset) });
    if (this.filter.value === REVIEW) params.set("unlabelled", "1");
    else if (this.filter.value === GOLDEN) params.set("golden", "1");
    else if (this.filter.value) params.set("label", this.filter.value);
    return "/captures?" + params;
  }

  /** Start over from the newest capture (after a capture, a filter change or an edit elsewhere). */
  async reload() {
    this.offset = 0;
    this.generation += 1;
    await this.loadPage(true);
  }

  async loadPage(replace = false) {
    const generation = this.generation;
    const shown = this.filter.value;
    let page;
    try {
      page = await api("GET", this.query());
    } catch (err) {
      if (err.status !== 401) toast("Gallery: " + describeError(err), "error");
      return;
    }
    if (generation !== this.generation) return; // a newer reload is under way
    const items = page.items || [];
    const cards = items.map((record) => this.card(record));
    if (replace) this.list.replaceChildren(...cards);
    else this.list.append(...cards);
    this.list.dataset.filter = shown; // which filter the cards on show answer
    this.offset += items.length;
    this.more.hidden = this.offset >= (page.total ?? 0);
    this.empty.hidden = this.list.children.length > 0;
  }

  card(record) {
    const li = document.createElement("li");
    li.className = "shot";
    li.dataset.id = record.id;
    li.dataset.group = record.group || "";
    this.paint(li, record.label);

    const link = document.createElement("a");
    link.href = record.urls.image;
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = `capture ${record.id} (${record.label || "unlabelled"})`;
    img.src = record.urls.thumbnail;
    link.append(img);

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-small btn-danger delete";
    remove.textContent = "Delete";
    remove.addEventListener("click", () => this.confirmDelete(li, remove, record));

    const meta = document.createElement("div");
    meta.className = "shot-meta";
    const time = document.createElement("time");
    time.textContent = formatTime(record.captured_at);
    time.dateTime = record.captured_at;
    const group = document.createElement("span");
    group.className = "shot-group";
    group.textContent = record.group || "";
    group.title = record.group ? `group ${record.group}` : "";
    meta.append(time, group, remove);

    const select = document.createElement("select");
    select.className = "relabel";
    select.setAttribute("aria-label", "label");
    if (!record.label) select.append(new Option("— label —", "", true, true));
    for (const label of this.labels) select.append(new Option(label.name, label.name, false, label.name === record.label));
    select.addEventListener("change", () => this.relabel(li, select, record));

    const star = document.createElement("button");
    star.type = "button";
    star.className = "btn btn-small golden-toggle";
    star.addEventListener("click", () => this.toggleGolden(li, star, record));
    this.showGolden(li, star, record.golden);

    const actions = document.createElement("div");
    actions.className = "shot-actions";
    actions.append(star, select);
    li.append(link, meta, actions);
    if (record.group) li.append(this.groupStar(record)); // over the thumbnail's corner
    return li;
  }

  showGolden(li, star, golden) {
    li.dataset.golden = golden ? "1" : "";
    star.textContent = golden ? "★" : "☆";
    star.setAttribute("aria-pressed", golden ? "true" : "false");
    star.setAttribute("aria-label", golden ? "in the golden set" : "not in the golden set");
    star.title = golden ? "Golden set: every model is scored on this capture. Click to take it out"
      : "Click to put this capture in the golden set (the frozen evaluation set)";
  }

  /** A per-group button: puts every capture of the card's group in the golden set, or takes them out. */
  groupStar(record) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-small golden-group";
    button.textContent = "★ group";
    button.setAttribute("aria-label", `golden set: whole group ${record.group}`);
    button.title = `Put every capture of group ${record.group} in the golden set, or take them out`;
    button.addEventListener("click", () => this.toggleGroupGolden(button, record));
    return button;
  }

  async toggleGolden(li, star, record) {
    const golden = !record.golden;
    star.disabled = true;
    try {
      const updated = await api("PATCH", `/captures/${encodeURIComponent(record.id)}`, { golden });
      record.golden = Boolean(updated && updated.golden);
      this.showGolden(li, star, record.golden);
      toast(record.golden ? "Added to the golden set" : "Taken out of the golden set", "ok");
      if (this.filter.value === GOLDEN && !record.golden) this.removeCard(li);
      this.onChanged();
    } catch (err) {
      toast("Golden set change failed. " + describeError(err), "error");
    } finally {
      star.disabled = false;
      star.blur(); // hand the keyboard back to the label keys
    }
  }

  async toggleGroupGolden(button, record) {
    const golden = !record.golden;
    button.disabled = true;
    try {
      const path = `/groups/${record.group.split("/").map(encodeURIComponent).join("/")}`;
      const result = await api("PATCH", path, { golden });
      const verb = golden ? "added to" : "taken out of";
      toast(`Group ${result.group}: ${result.changed} of ${result.captures} capture(s) ${verb} the golden set`, "ok");
      this.onChanged();
      await this.reload(); // other cards of the group changed too
    } catch (err) {
      toast("Golden set change failed. " + describeError(err), "error");
    } finally {
      button.disabled = false;
      button.blur();
    }
  }

  paint(li, label) {
    li.style.setProperty("--c", this.colours.get(label) || "var(--muted)");
    li.dataset.label = label || "";
  }

  async relabel(li, select, record) {
    const previous = record.label;
    const label = select.value;
    if (!label || label === previous) return;
    select.disabled = true;
    try {
      const updated = await api("PATCH", `/captures/${encodeURIComponent(record.id)}`, { label });
      record.label = (updated && updated.label) || label;
      this.paint(li, record.label);
      const placeholder = select.querySelector('option[value=""]');
      if (placeholder) placeholder.remove();
      toast(`Relabelled ${previous || "unlabelled"} → ${record.label}`, "ok", { colour: this.colours.get(record.label) });
      if (this.filter.value && this.filter.value !== record.label) this.removeCard(li);
      this.onChanged();
    } catch (err) {
      select.value = previous || "";
      toast("Relabel failed. " + describeError(err), "error");
    } finally {
      select.disabled = false;
      select.blur(); // hand the keyboard back to the label keys
    }
  }

  /** Drop a card that no longer belongs to the list shown. */
  removeCard(li) {
    li.remove();
    this.offset = Math.max(0, this.offset - 1);
    this.empty.hidden = this.list.children.length > 0;
  }

  /** First click arms the button; a second click within a few seconds deletes. */
  async confirmDelete(li, button, record) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = "Confirm delete";
      setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = "Delete";
      }, CONFIRM_MS);
      return;
    }
    button.disabled = true;
    try {
      await api("DELETE", `/captures/${encodeURIComponent(record.id)}`);
      this.removeCard(li);
      toast(`Deleted ${record.label || "unlabelled"} capture`, "info");
      this.onChanged();
    } catch (err) {
      button.disabled = false;
      toast("Delete failed. " + describeError(err), "error");
    }
  }
}

// Operator page entry point: login, then the live preview, capture pad, progress, gallery and inspection.

import { api, describeError, onAuthRequired } from "./api.js";
import { Gallery } from "./gallery.js";
import { CurrentGroup } from "./group.js";
import { InspectPanel } from "./inspect.js";
import { CapturePad, Progress, withColours } from "./labels.js";
import { ModelsPanel } from "./models.js";
import { LivePreview, StatusLine } from "./status.js";

const STATUS_EVERY_MS = 2000;
const REFRESH_DEBOUNCE_MS = 300;

const $ = (id) => document.getElementById(id);

function showLogin(message) {
  $("app").hidden = true;
  $("download").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("token-input").focus();
}

async function login(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  try {
    await api("POST", "/session", { token });
  } catch (err) {
    showLogin(describeError(err));
    return;
  }
  $("token-input").value = "";
  window.location.reload();
}

/** Run `fn` once, `ms` after the last call (bursts of captures trigger one refresh). */
function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
}

async function start() {
  $("login-form").addEventListener("submit", login);
  const preview = new LivePreview();
  let stopped = false;
  onAuthRequired(() => {
    stopped = true;
    preview.stop();
    showLogin();
  });
  const statusLine = new StatusLine();
  const status = await statusLine.refresh();
  if (!status) {
    if (!stopped) showLogin();
    return;
  }
  const schema = await api("GET", "/labels");
  const labels = withColours(schema);

  $("login").hidden = true;
  $("app").hidden = false;
  $("download").hidden = false;

  const progress = new Progress(labels);
  const gallery = new Gallery(labels, { onChanged: () => progress.refresh() });
  const refreshAfterCapture = debounce(() => {
    progress.refresh();
    gallery.reload();
    statusLine.refresh();
  }, REFRESH_DEBOUNCE_MS);
  const group = new CurrentGroup();
  const pad = new CapturePad(labels, { onCaptured: refreshAfterCapture, beforeCapture: () => group.settled() });
  const inspect = new InspectPanel(labels);
  const models = new ModelsPanel({ onChanged: () => statusLine.refresh() });

  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const label = pad.labelForKey(event);
    if (label) {
      event.preventDefault();
      pad.capture(label);
    } else if (event.key.toLowerCase() === "i") {
      event.preventDefault();
      inspect.inspect();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) preview.stop();
    else if (!stopped) preview.start();
  });
  window.addEventListener("pagehide", () => preview.stop());

  preview.start();
  group.load();
  progress.refresh();
  gallery.reload();
  models.refresh();
  setInterval(async () => {
    if (stopped || document.hidden) return;
    await statusLine.refresh();
    if (statusLine.liveInspection) inspect.refreshLatest();
    models.refresh();
  }, STATUS_EVERY_MS);
}

start().catch((err) => showLogin(describeError(err)));

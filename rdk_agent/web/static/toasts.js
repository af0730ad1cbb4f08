// Non-blocking notifications: each toast stacks, fades by itself and never takes focus.

const MAX_TOASTS = 4;

/** Show a short message; kind is "ok", "error" or "info". colour tints the toast's edge. */
export function toast(message, kind = "info", { colour, timeout } = {}) {
  const box = document.getElementById("toasts");
  const el = document.createElement("div");
  el.className = "toast toast-" + kind;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  if (colour) el.style.setProperty("--edge", colour);
  el.textContent = message;
  box.append(el);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  const ms = timeout || (kind === "error" ? 6000 : 1800);
  setTimeout(() => {
    el.classList.add("toast-out");
    setTimeout(() => el.remove(), 300);
  }, ms);
  return el;
}

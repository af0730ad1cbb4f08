// Thin client for the agent's JSON API under /api/v1. Auth rides on the session cookie.

const API = "/api/v1";

/** An error answered by the agent: HTTP status plus its {"error": {"code", "message"}} body. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const authListeners = [];

/** Call fn() whenever a request is refused with 401 (the session expired or was never opened). */
export function onAuthRequired(fn) {
  authListeners.push(fn);
}

/** Request `path` under /api/v1 and return the parsed JSON body (null for 204). */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new ApiError(0, "network", "agent unreachable: " + err.message);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    const failure = new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.statusText || "request failed");
    if (response.status === 401) authListeners.forEach((fn) => fn(failure));
    throw failure;
  }
  return data;
}

/** A human-readable line for an error, with the agent's message. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const prefix = {
    0: "Agent unreachable",
    401: "Not logged in",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    503: "Unavailable",
    507: "Disk full",
  }[err.status] || (err.status ? "Error " + err.status : "Error");
  return prefix + ": " + err.message;
}

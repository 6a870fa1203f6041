// The control plane's /api/v1, called with the signed-in token as `Authorization: Bearer`.
import { h } from "./dom.js";

export const API = new URL("../api/v1/", document.baseURI).pathname;

// The token, and what to do when the control plane stops accepting it (set by app.js).
export const session = { token: null, onUnauthorized: () => {} };

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.kind = (body && body.error) || "";
    this.fix = (body && body.fix) || "";
  }
}

export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${session.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  if (!res.ok) {
    let detail = null;
    try { detail = await res.json(); } catch { detail = null; }
    const err = new ApiError(res.status, detail);
    if (res.status === 401) session.onUnauthorized(err);
    throw err;
  }
  return raw ? res : res.json();
}

// A query string of the given parameters, leaving out empty ones.
export const q = (params) => new URLSearchParams(
  Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""),
).toString();

// A refusal as the page shows it: what happened, then the way out.
export function errorText(err) {
  const status = err.status === 403 ? "Forbidden: " : err.status === 401 ? "Not signed in: " : "";
  return [h("span", {}, status + err.message), err.fix ? h("span", { class: "fix" }, err.fix) : null];
}

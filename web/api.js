// api.js - the page's one way to the API: same origin, the session cookie,
// the CSRF token on every write, errors turned into sentences.

let csrf = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, message, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter || "";
  }
}

export function setSession(session) { csrf = session ? session.csrf : ""; }
export function whenSignedOut(fn) { onSignedOut = fn; }

function errorOf(status, body, text) {
  if (body && typeof body.error === "string")
    return new ApiError(status, body.error, body.parameter);
  if (status === 0) return new ApiError(0, "the server cannot be reached: is nofussd running?");
  return new ApiError(status, "the server answered " + status + (text ? ": " + text.slice(0, 200) : ""));
}

// fetch of path (under /api/v1) with method and a JSON body (or none).
// Resolves the parsed answer; rejects with an ApiError. A 401 means the
// session is over: the page goes back to sign-in.
export async function api(method, path, body) {
  const headers = {"Accept": "application/json"};
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch("/api/v1" + path, {method, headers, credentials: "same-origin",
                                          cache: "no-store",
                                          body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (e) {
    throw errorOf(0);
  }
  const text = await resp.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
  if (resp.status === 401 && path !== "/session") onSignedOut(parsed && parsed.error);
  if (!resp.ok) throw errorOf(resp.status, parsed, text);
  return parsed;
}

// An upload with progress (XMLHttpRequest's upload events; fetch has none).
// onProgress(loaded, total). Resolves the answer; rejects with an ApiError.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", "/api/v1" + path);
    x.setRequestHeader("X-CSRF-Token", csrf);
    x.setRequestHeader("Content-Type", "application/octet-stream");
    x.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    x.addEventListener("load", () => {
      let parsed = null;
      try { parsed = JSON.parse(x.responseText); } catch (e) { parsed = null; }
      if (x.status === 401) onSignedOut(parsed && parsed.error);
      if (x.status >= 200 && x.status < 300) resolve(parsed);
      else reject(errorOf(x.status, parsed, x.responseText));
    });
    x.addEventListener("error", () => reject(errorOf(0)));
    x.send(file);
  });
}

export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

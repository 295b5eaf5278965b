// app.js - the back office's frame: sign-in and sign-out, the screens by
// the URL's hash (#/fleet, #/devices?..., #/device/KEY, #/releases,
// #/rollouts, #/rollout/ID, #/audit), and live updates.
//
// Live updates (docs/WEB.md section 5): the screen shown may give one
// refresh function; it is called every LIVE_MS, one call in flight at
// most, the next one planned only when the last is over; failures back off
// (doubling, up to a minute); a hidden tab polls nothing. Each refresh
// replaces what it drew, so a page left open for hours holds one screen.
import {api, setSession, whenSignedOut} from "./api.js";
import {h} from "./dom.js";
import * as fleet from "./fleet.js";
import * as devices from "./devices.js";
import * as releases from "./releases.js";
import * as rollouts from "./rollouts.js";
import * as audit from "./audit.js";

const LIVE_MS = 5000, MAX_BACKOFF_MS = 60000;
const screens = {
  fleet: fleet.fleet, devices: devices.list, device: devices.one, releases: releases.list,
  rollouts: rollouts.list, rollout: rollouts.one, audit: audit.list,
};
const $ = (id) => document.getElementById(id);
let session = null;
let liveFn = null, timer = null, inflight = false, failures = 0, shown = 0;

export function status(msg, isError) {
  const s = $("status");
  s.textContent = msg || "";
  s.className = isError ? "error" : "";
}

function plan(ms) {
  clearTimeout(timer);
  timer = null;
  if (liveFn && !document.hidden && session) timer = setTimeout(tick, ms);
}

async function tick() {
  timer = null;
  if (inflight || !liveFn || document.hidden) return; // the call in flight plans the next
  inflight = true;
  const fn = liveFn;
  try {
    const focus = focusKey();
    await fn();
    refocus(focus);
    if (failures) status("");
    failures = 0;
  } catch (e) {
    if (fn === liveFn && e.status !== 401) {
      failures++;
      const wait = Math.min(MAX_BACKOFF_MS, LIVE_MS * 2 ** failures);
      status("Live updates failed: " + e.message + ". Trying again in " + Math.round(wait / 1000) + " s.", true);
    }
  } finally {
    inflight = false;
  }
  plan(failures ? Math.min(MAX_BACKOFF_MS, LIVE_MS * 2 ** failures) : LIVE_MS);
}

// A refresh redraws the screen: the keyboard's place in it is kept by
// finding the same control (same action, link or name) in what was drawn.
function focusKey() {
  const el = document.activeElement;
  if (!el || !$("screen").contains(el)) return null;
  for (const attr of ["data-action", "data-delete", "href", "name"])
    if (el.hasAttribute(attr)) return "[" + attr + "='" + CSS.escape(el.getAttribute(attr)) + "']";
  return null;
}

function refocus(key) {
  const el = key && !$("screen").contains(document.activeElement) ? $("screen").querySelector(key) : null;
  if (el) el.focus();
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) { clearTimeout(timer); timer = null; } else plan(0);
});

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/");
  const name = screens[parts[0]] ? parts[0] : "fleet";
  return {name, arg: parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : "",
          params: new URLSearchParams(query || "")};
}

async function route() {
  if (!session) return;
  const {name, arg, params} = parseHash();
  const me = ++shown;
  for (const a of document.querySelectorAll("#nav a"))
    a.toggleAttribute("aria-current", a.dataset.screen === name || a.dataset.screen + "s" === name ||
                                      (name === "device" && a.dataset.screen === "devices") ||
                                      (name === "rollout" && a.dataset.screen === "rollouts"));
  liveFn = null;
  plan(0);
  failures = 0;
  status("");
  const root = h("div", {class: "screen", "data-screen": name});
  $("screen").replaceChildren(root);
  const ctx = {root, arg, params, admin: session.role === "admin", status,
               go: (hash) => { location.hash = hash; }};
  try {
    const live = await screens[name](ctx);
    if (me === shown && typeof live === "function") { liveFn = live; plan(LIVE_MS); }
  } catch (e) {
    if (e.status !== 401) root.append(h("p", {class: "error", role: "alert"}, "Could not load this screen: " + e.message));
  }
}

function showSignedIn(s) {
  session = s;
  setSession(s);
  document.body.dataset.role = s.role;
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = "Signed in as " + s.name + " (" + s.role + (s.role === "read" ? ": can look, cannot change" : "") + ")";
  route();
}

function showSignIn(msg) {
  session = null;
  setSession(null);
  liveFn = null;
  plan(0);
  delete document.body.dataset.role;
  $("screen").replaceChildren();
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = msg || "";
  $("token").focus();
}

// A 401: the session expired (the browser drops the cookie at its
// Max-Age, so the server may only see no cookie) or was ended elsewhere.
whenSignedOut(() => {
  if (session) showSignIn("Your session has ended (it expired, or was signed out). Sign in again.");
});

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("token");
  $("signin-error").textContent = "";
  try {
    const s = await api("POST", "/session", {token: input.value.trim()});
    input.value = "";
    showSignedIn(s);
  } catch (e) {
    $("signin-error").textContent = "Sign-in refused: " + e.message;
  }
});

$("signout").addEventListener("click", async () => {
  try { await api("DELETE", "/session"); } catch (e) { /* signed out either way */ }
  showSignIn("Signed out.");
});

window.addEventListener("hashchange", route);

(async () => {
  try {
    const s = await api("GET", "/session");
    if (s.role) showSignedIn(s);
    else showSignIn(s.why === "not signed in" ? "" : "Your session has ended (" + s.why + "). Sign in again.");
  } catch (e) {
    showSignIn("The server cannot be reached: " + e.message);
  }
})();

// fleet.js - the fleet overview: devices by type and version (a chart and
// the numbers), by update state, not seen for a day or a week, and the
// rollouts not over with their progress. Live: redrawn on every refresh.
import {api} from "./api.js";
import {h, table, when} from "./dom.js";
import {barChart} from "./chart.js";
import {rolloutProgress} from "./rollouts.js";

const STATES = ["none", "offered", "downloading", "downloaded", "confirmed", "reverted", "failed", "silent"];
const CHART_ROWS = 12, TABLE_ROWS = 200;

async function gather() {
  // One aggregate answer (GET /api/v1/overview): one request per refresh.
  const o = await api("GET", "/overview");
  return {summary: o.summary, day: o.not_seen.day, week: o.not_seen.week, rollouts: o.rollouts};
}

function stat(label, value, href) {
  const v = h("span", {class: "stat-value"}, value.toLocaleString("en"));
  return h("div", {class: "stat"}, href ? h("a", {href}, v) : v, h("span", {class: "stat-label"}, label));
}

function draw(root, d) {
  const s = d.summary;
  const parts = [h("h1", {}, "Fleet")];
  if (s.devices === 0) {
    parts.push(h("p", {class: "empty"},
      "No devices yet: point a device at http://" + location.hostname + ":8080/ (nofussd's device " +
      "port, 8080 unless --port says otherwise); it appears here after its first check."));
  }
  parts.push(h("div", {class: "stats", "data-testid": "fleet-stats"},
    stat("devices", s.devices, "#/devices"), stat("seen in 24 h", s.seen_24h),
    stat("not seen for a day", d.day, "#/devices?seen_before=24h"),
    stat("not seen for a week", d.week, "#/devices?seen_before=7d"),
    stat("held back", s.held_back ?? 0)));
  parts.push(h("p", {class: "hint"}, "Held back: a rule matched at the device's last check but its image " +
    "could not be offered (larger than the free space it reported, ...); a device's screen says why."));

  const active = d.rollouts.filter((r) => ["running", "paused", "halted"].includes(r.state));
  parts.push(h("h2", {}, "Rollouts not over"));
  if (active.length === 0) parts.push(h("p", {class: "empty"}, "No rollout is running. Upload a release, then start one on the Rollouts screen."));
  for (const r of active) parts.push(rolloutProgress(r));

  parts.push(h("h2", {}, "Update states"));
  parts.push(table(["State", "Devices"], STATES.map((st) => h("tr", {},
    h("td", {}, h("a", {href: "#/devices?state=" + st}, st)),
    h("td", {class: "num", "data-state": st}, s.by_state[st].toLocaleString("en"))))));

  parts.push(h("h2", {}, "Devices by type and version"));
  const rows = s.by_type_version;
  if (rows.length > 0) {
    parts.push(barChart(rows.slice(0, CHART_ROWS).map((r) => ({label: r.type + " " + r.version, value: r.devices})),
                        "Devices by type and version, largest first"));
    parts.push(table(["Type", "Version", "Devices"], rows.slice(0, TABLE_ROWS).map((r) => h("tr", {},
      h("td", {}, h("a", {href: "#/devices?" + new URLSearchParams({type: r.type})}, r.type)),
      h("td", {}, h("a", {href: "#/devices?" + new URLSearchParams({type: r.type, version: r.version})}, r.version)),
      h("td", {class: "num"}, r.devices.toLocaleString("en"))))));
    if (rows.length > TABLE_ROWS || s.truncated)
      parts.push(h("p", {class: "hint"}, "The largest " + Math.min(rows.length, TABLE_ROWS) + " shown; filter the device list for the rest."));
  }
  parts.push(h("p", {class: "hint"}, "As of " + when(s.generated) + "; updated every few seconds."));
  root.replaceChildren(...parts);
}

export async function fleet(ctx) {
  draw(ctx.root, await gather());
  return async () => draw(ctx.root, await gather());
}

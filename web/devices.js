// devices.js - the device list (filters, sorting and paging done by the
// server: GET /api/v1/devices's parameters, docs/ADMIN.md section 3) and
// one device: what it is and runs, its history as a timeline, "why this
// answer" (the decision and its "now" steps), pin, exclude and tags.
import {api, q} from "./api.js";
import {h, field, fieldError, clearErrors, table, when, ago, bytes} from "./dom.js";

const PAGE = 50;
const STATES = ["", "none", "offered", "downloading", "downloaded", "confirmed", "reverted", "failed", "silent"];
const SORTS = ["last_seen", "first_seen", "key", "type", "version", "state", "ip"];
const FILTERS = ["type", "version", "state", "mac", "ip", "tag", "seen_after", "seen_before", "sort", "order"];

function select(name, values, current, labels) {
  return h("select", {name}, values.map((v, i) =>
    h("option", {value: v, selected: v === current}, labels ? labels[i] : (v || "any"))));
}

export async function list(ctx) {
  const p = ctx.params;
  const get = (k) => p.get(k) || "";
  const offset = Number(get("offset")) || 0;
  const form = h("form", {class: "filters", role: "search"},
    field("Type", h("input", {name: "type", value: get("type")})),
    field("Version", h("input", {name: "version", value: get("version")})),
    field("State", select("state", STATES, get("state"))),
    field("MAC starts with", h("input", {name: "mac", value: get("mac"), placeholder: "5c:cf:7f"})),
    field("IP starts with", h("input", {name: "ip", value: get("ip"), placeholder: "192.168."})),
    field("Tag", h("input", {name: "tag", value: get("tag")})),
    field("Seen within", select("seen_after", ["", "1h", "24h", "7d"], get("seen_after"), ["any time", "1 hour", "1 day", "1 week"])),
    field("Not seen for", select("seen_before", ["", "1h", "24h", "7d"], get("seen_before"), ["-", "1 hour", "1 day", "1 week"])),
    field("Sort by", select("sort", SORTS, get("sort") || "last_seen", SORTS.map((s) => s.replace("_", " ")))),
    field("Order", select("order", ["desc", "asc"], get("order") || "desc", ["descending", "ascending"])),
    h("div", {class: "field buttons"}, h("button", {type: "submit"}, "Filter"),
      h("a", {href: "#/devices", class: "button"}, "Clear")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const u = new URLSearchParams();
    for (const k of FILTERS) if (form.elements[k].value.trim()) u.set(k, form.elements[k].value.trim());
    ctx.go("#/devices?" + u);
  });
  const box = h("div", {"aria-live": "polite"});
  ctx.root.append(h("h1", {}, "Devices"), form, box);
  const query = {};
  for (const k of FILTERS) if (get(k)) query[k] = get(k);
  let out;
  try {
    out = await api("GET", "/devices" + q(Object.assign({}, query, {offset, limit: PAGE})));
  } catch (e) {
    if (e.status === 400 && fieldError(form, e.parameter, e.message)) return;
    throw e;
  }
  if (out.total === 0) {
    const any = Object.keys(query).some((k) => k !== "sort" && k !== "order");
    box.append(h("p", {class: "empty"}, any ? "No device matches these filters: widen or clear them."
      : "No devices yet: point a device at http://" + location.hostname + ":8080/ (nofussd's device port) and it appears here after its first check."));
    return;
  }
  const now = Date.now();
  const rows = out.devices.map((d) => h("tr", {},
    h("td", {}, h("a", {href: "#/device/" + encodeURIComponent(d.key)}, d.mac || d.key)),
    h("td", {}, d.type), h("td", {}, d.version), h("td", {}, d.client),
    h("td", {}, h("span", {class: "badge badge-" + d.state}, d.state)),
    h("td", {title: when(d.last_seen)}, ago(d.last_seen_ms, now)), h("td", {}, d.ip)));
  box.append(table(["MAC", "Type", "Version", "Client", "State", "Last seen", "IP"], rows,
    "Devices " + (offset + 1) + " to " + (offset + out.count) + " of " + out.total.toLocaleString("en")));
  const pager = h("nav", {class: "pager", "aria-label": "Pages"});
  const at = (o) => "#/devices?" + new URLSearchParams(Object.assign({}, query, {offset: o}));
  if (offset > 0) pager.append(h("a", {href: at(Math.max(0, offset - PAGE))}, "Previous"));
  if (out.next_offset !== null) pager.append(h("a", {href: at(out.next_offset)}, "Next"));
  box.append(pager);
}

const KIND_WORDS = {offer: "offered", offered: "offered", download: "downloaded", confirm: "confirmed", revert: "reverted"};

function timeline(history) {
  if (!history || history.length === 0) return h("p", {class: "empty"}, "Nothing has happened to it yet: its history starts with its first offer.");
  return h("ol", {class: "timeline"}, history.map((e) => h("li", {class: "tl-" + e.state},
    h("time", {datetime: e.at}, when(e.at)), " ",
    h("strong", {}, KIND_WORDS[e.kind] || e.kind), " ",
    h("span", {class: "badge badge-" + e.state}, e.state),
    e.target ? " target " + e.target : "", e.version ? ", running " + e.version : "",
    e.total ? ", " + bytes(e.bytes) + " of " + bytes(e.total) : "",
    e.detail ? h("div", {class: "hint"}, e.detail) : null)));
}

function decisionView(dec) {
  return h("div", {class: "card", "data-testid": "decision"},
    h("h2", {}, "Why this answer"),
    h("p", {}, dec.explanation),
    dec.now ? h("div", {}, h("h3", {}, "If it checked now"),
      h("ol", {class: "steps"}, dec.now.map((s) => h("li", {class: s.chosen ? "chosen" : ""},
        h("strong", {}, s.step + (s.rollout ? " " + s.rollout : "")), ": " + s.detail, s.chosen ? " ← this answers" : ""))))
      : null);
}

async function controls(ctx, d, redraw) {
  const box = h("div", {class: "card"}, h("h2", {}, "Controls"));
  const msg = h("p", {class: "error", role: "alert"});
  const act = async (method, path, body, what) => {
    msg.textContent = "";
    try { await api(method, path, body); ctx.status(what + ": done."); await redraw(); }
    catch (e) { msg.textContent = what + " refused: " + e.message; }
  };
  const key = encodeURIComponent(d.key);
  const rels = (await api("GET", "/releases" + q({device: d.type}))).releases;
  const pinForm = h("form", {class: "row"});
  if (d.pin) {
    const b = h("button", {type: "button"}, "Unpin");
    b.addEventListener("click", () => act("DELETE", "/devices/" + key + "/pin", undefined, "Unpin"));
    pinForm.append(h("span", {}, "Pinned to release " + d.pin.release + " "), b);
  } else if (rels.length) {
    const sel = h("select", {name: "release"}, rels.map((r) => h("option", {value: r.id}, "#" + r.id + " " + r.version)));
    pinForm.append(field("Pin to release", sel), h("button", {type: "submit"}, "Pin"));
    pinForm.addEventListener("submit", (ev) => { ev.preventDefault(); act("POST", "/devices/" + key + "/pin", {release: Number(sel.value)}, "Pin"); });
  } else {
    pinForm.append(h("span", {class: "hint"}, "No release of type " + d.type + " to pin it to: upload one first."));
  }
  const ex = h("button", {type: "button"}, d.excluded ? "Include in rollouts" : "Exclude from rollouts");
  ex.addEventListener("click", () => act(d.excluded ? "DELETE" : "POST", "/devices/" + key + "/exclude", undefined, ex.textContent));
  const tagInput = h("input", {name: "tag", maxlength: 31, pattern: "[A-Za-z0-9_.\\-]{1,31}"});
  const tagForm = h("form", {class: "row"}, field("Add a tag", tagInput, "Letters, digits, _ . - (up to 31)"), h("button", {type: "submit"}, "Add tag"));
  tagForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearErrors(tagForm);
    const t = tagInput.value.trim();
    if (!t) { fieldError(tagForm, "tag", "Type a tag first."); return; }
    act("POST", "/devices/" + key + "/tags/" + encodeURIComponent(t), undefined, "Tag " + t);
  });
  const tags = h("ul", {class: "tags"}, d.tags.map((t) => {
    const b = h("button", {type: "button", "aria-label": "Remove tag " + t}, "×");
    b.addEventListener("click", () => act("DELETE", "/devices/" + key + "/tags/" + encodeURIComponent(t), undefined, "Untag " + t));
    return h("li", {}, t, " ", b);
  }));
  box.append(pinForm, h("div", {class: "row"}, ex), h("h3", {}, "Tags"), tags, tagForm, msg);
  return box;
}

export async function one(ctx) {
  const key = encodeURIComponent(ctx.arg);
  const draw = async () => {
    const d = await api("GET", "/devices/" + key);
    const dec = await api("GET", "/devices/" + key + "/decision");
    const hw = d.hardware || {};
    const info = h("dl", {class: "facts"},
      [["MAC", d.mac || "(none)"], ["Type", d.type], ["Version", d.version], ["Build", d.build || ""],
       ["Client", d.client], ["IP", d.ip], ["State", d.state + (d.state_since ? " since " + when(d.state_since) : "")],
       ["Offer", d.offer && d.offer.target ? d.offer.target + " (from " + (d.offer.from_version || "?") + ", " + when(d.offer.offered) + ")" : "none"],
       ["First seen", when(d.first_seen)], ["Last seen", when(d.last_seen)], ["Checks", d.checks],
       ["Chip", hw.chip_id ? hw.chip_id + ", flash " + bytes(hw.chip_size) + ", free " + bytes(hw.free_space) : "not reported"],
       ["Tags", d.tags.join(", ") || "none"], ["Pin", d.pin ? "release " + d.pin.release : "none"],
       ["Rollouts", d.excluded ? "excluded" : "eligible"]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    const parts = [h("p", {}, h("a", {href: "#/devices"}, "← Devices")),
      h("h1", {}, "Device " + (d.mac || d.key)), info, decisionView(dec)];
    if (ctx.admin) parts.push(await controls(ctx, d, draw));
    parts.push(h("h2", {}, "History"), timeline(d.history));
    ctx.root.replaceChildren(...parts);
  };
  await draw();
}

// rollouts.js - the rollouts: a form to start one (defaults filled in and
// explained, docs/ROLLOUTS.md section 2), the list, and one rollout live:
// counts per phase, the gates against the current figures, the halt
// reason, and pause, resume, advance and abort, each confirmed first.
import {api} from "./api.js";
import {h, field, fieldError, clearErrors, table, when, confirmDialog} from "./dom.js";
import {stacked} from "./chart.js";

const OVER = ["completed", "aborted"];

function parts(c) {
  return [{label: "confirmed", value: c.confirmed, cls: "ok"},
          {label: "pending", value: c.pending, cls: "pending"},
          {label: "reverted", value: c.reverted, cls: "bad"},
          {label: "failed", value: c.failed, cls: "bad2"},
          {label: "silent", value: c.silent, cls: "silent"}];
}

// A rollout in a few lines: state, phase, counts and a bar (the fleet screen).
export function rolloutProgress(r) {
  const c = r.counts || {offered: 0, pending: 0, confirmed: 0, reverted: 0, failed: 0, silent: 0};
  return h("div", {class: "rollout-card state-" + r.state, "data-rollout": r.id},
    h("div", {class: "row"},
      h("a", {href: "#/rollout/" + r.id}, "Rollout " + r.id + ": " + r.device + " to release " + r.release),
      h("span", {class: "badge badge-" + r.state}, r.state),
      h("span", {}, "phase " + (r.phase + 1) + " of " + r.phases.length + " (" + r.percent + "%)")),
    stacked(parts(c), c.offered),
    h("div", {class: "hint"}, c.offered + " offered: " + c.confirmed + " confirmed, " + c.pending + " pending, " +
      c.reverted + " reverted, " + c.failed + " failed, " + c.silent + " silent"),
    r.reason ? h("div", {class: "reason"}, "Reason: " + r.reason) : null);
}

function input(name, value, attrs) {
  return h("input", Object.assign({name, value: value === undefined ? "" : value}, attrs || {}));
}

async function createForm(ctx, onStarted) {
  const rels = (await api("GET", "/releases")).releases;
  const form = h("form", {class: "card", novalidate: true});
  form.append(h("h2", {}, "Start a rollout"));
  if (rels.length === 0) {
    form.append(h("p", {class: "empty"}, "No release yet: upload one on the Releases screen first."));
    return form;
  }
  const sel = h("select", {name: "release", required: true},
    rels.map((r) => h("option", {value: r.id}, "#" + r.id + " " + r.device + " " + r.version)));
  form.append(
    field("Release", sel, "The firmware to offer; only devices of its type are eligible."),
    field("Phases (% of eligible devices)", input("phases", "1, 10, 50, 100"),
          "Default 1, 10, 50, 100: 1% of 5,000 devices is 50, enough to see a boot loop, few enough to lose."),
    field("Success threshold (%)", input("success_threshold", "95", {type: "number", min: 0, max: 100, step: "any"}),
          "Share of offered devices that must confirm before the next phase (default 95)."),
    field("Error threshold (%)", input("error_threshold", "5", {type: "number", min: 0, max: 100, step: "any"}),
          "Reverted + failed + silent above this halts the rollout (default 5)."),
    field("Soak (seconds)", input("soak", "3600", {type: "number", min: 0}),
          "A phase lasts at least this long (default 3600: one hour)."),
    field("Silent after (seconds)", input("silent_after", "3600", {type: "number", min: 60}),
          "Offered and not confirmed this long counts as silent (default 3600)."),
    field("Minimum version", input("min_version", ""), "Only devices running at least this (empty: any)."),
    field("Maximum version", input("max_version", ""), "Only devices running at most this (empty: any)."),
    field("Tags", input("tags", ""), "Comma-separated; only devices with one of them (empty: any)."),
    field("Window", input("window", "", {placeholder: "22:00-05:00"}),
          "Offers only between these times, server's local time (empty: always)."),
    field("Rate (offers a minute)", input("rate", "0", {type: "number", min: 0}),
          "At most this many new offers a minute (0: no bound)."),
    h("div", {class: "field"}, h("label", {}, input("approval", "", {type: "checkbox"}),
      " Approval: phases advance only when someone presses Advance")),
    h("p", {class: "error form-error", role: "alert"}),
    h("button", {type: "submit"}, "Start rollout"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    form.querySelector(".form-error").textContent = "";
    const v = (n) => form.elements[n].value.trim();
    const body = {release: Number(v("release")),
                  phases: v("phases").split(/[\s,]+/).filter(Boolean).map(Number),
                  success_threshold: Number(v("success_threshold")), error_threshold: Number(v("error_threshold")),
                  soak: Number(v("soak")), silent_after: Number(v("silent_after")),
                  rate: Number(v("rate")), approval: form.elements.approval.checked};
    if (v("min_version")) body.min_version = v("min_version");
    if (v("max_version")) body.max_version = v("max_version");
    if (v("tags")) body.tags = v("tags").split(/[\s,]+/).filter(Boolean);
    if (v("window")) body.window = v("window");
    try {
      const ro = await api("POST", "/rollouts", body);
      onStarted(ro);
    } catch (e) {
      const name = (e.parameter || "").replace(/\[\d+\]$/, "");
      if (!fieldError(form, name, e.message)) form.querySelector(".form-error").textContent = e.message;
    }
  });
  return form;
}

export async function list(ctx) {
  const box = h("div");
  ctx.root.append(h("h1", {}, "Rollouts"), box);
  if (ctx.admin) ctx.root.append(await createForm(ctx, (ro) => ctx.go("#/rollout/" + ro.id)));
  const draw = (ros) => {
    if (ros.length === 0) {
      box.replaceChildren(h("p", {class: "empty"}, ctx.admin ? "No rollout yet: start one with the form below."
                                                              : "No rollout yet."));
      return;
    }
    box.replaceChildren(table(["Rollout", "Release", "State", "Phase", "Offered", "Confirmed", "Failing", "Started"],
      ros.map((r) => {
        const c = r.counts || {};
        return h("tr", {},
          h("td", {}, h("a", {href: "#/rollout/" + r.id}, "#" + r.id + " " + r.device)),
          h("td", {}, h("a", {href: "#/releases"}, "#" + r.release)),
          h("td", {}, h("span", {class: "badge badge-" + r.state}, r.state)),
          h("td", {}, (r.phase + 1) + "/" + r.phases.length + " (" + r.percent + "%)"),
          h("td", {class: "num"}, c.offered ?? ""), h("td", {class: "num"}, c.confirmed ?? ""),
          h("td", {class: "num"}, c.offered === undefined ? "" : c.reverted + c.failed + c.silent),
          h("td", {}, when(r.created)));
      })));
  };
  draw((await api("GET", "/rollouts")).rollouts);
  return async () => draw((await api("GET", "/rollouts")).rollouts);
}

const ACTIONS = [
  {name: "pause", states: ["running"], q: "Pause this rollout? No new device is offered the release until it is resumed."},
  {name: "resume", states: ["paused", "halted"], q: "Resume this rollout? Devices of its phase are offered the release again."},
  {name: "advance", states: ["running", "paused"], q: "Advance to the next phase now, whatever the gates say?"},
  {name: "abort", states: ["running", "paused", "halted", "completed"], q: "Abort this rollout? It is over for good: no device is offered the release any more."},
];

function detail(ctx, r) {
  const g = r.gates;
  const out = [h("h1", {}, "Rollout " + r.id + ": " + r.device + " to release " + r.release),
    h("p", {}, h("span", {class: "badge badge-" + r.state, "data-testid": "rollout-state"}, r.state),
      " since " + when(r.state_since) + "; phase " + (r.phase + 1) + " of " + r.phases.length +
      " (" + r.percent + "%); started by " + r.created_by + " " + when(r.created))];
  if (r.reason) out.push(h("p", {class: "reason", "data-testid": "rollout-reason", role: "alert"}, "Reason: " + r.reason));
  if (r.shadowed_by && r.shadowed_by.length)
    out.push(h("p", {class: "warn"}, "versions.json rule(s) " + r.shadowed_by.join(", ") + " answer these devices first: the rollout offers nothing to them."));
  if (ctx.admin && !OVER.includes(r.state)) {
    const bar = h("div", {class: "row actions"});
    for (const a of ACTIONS) {
      if (!a.states.includes(r.state)) continue;
      const b = h("button", {type: "button", class: a.name === "abort" ? "danger" : "", "data-action": a.name},
                  a.name[0].toUpperCase() + a.name.slice(1));
      b.addEventListener("click", async () => {
        if (!(await confirmDialog(a.q, b.textContent))) return;
        try {
          const ro = await api("POST", "/rollouts/" + r.id + "/" + a.name);
          ctx.root.replaceChildren(...detail(ctx, ro));
          ctx.status("Rollout " + r.id + ": " + a.name + " done; now " + ro.state + ".");
        } catch (e) { ctx.status(a.name + " refused: " + e.message, true); }
      });
      bar.append(b);
    }
    out.push(bar);
  }
  if (g) {
    out.push(h("h2", {}, "Gates"), table(["Gate", "Threshold", "Now"], [
      h("tr", {}, h("td", {}, "Success (confirmed of offered)"), h("td", {class: "num"}, g.success_threshold + "%"),
        h("td", {class: "num", "data-testid": "success-now"}, g.success_now === null || g.success_now === undefined ? "n/a" : g.success_now.toFixed(2) + "%")),
      h("tr", {}, h("td", {}, "Error (reverted + failed + silent), halts above"), h("td", {class: "num"}, g.error_threshold + "%"),
        h("td", {class: "num" + (g.error_now > g.error_threshold ? " bad" : ""), "data-testid": "error-now"},
          g.error_now === null || g.error_now === undefined ? "n/a" : g.error_now.toFixed(2) + "%")),
      h("tr", {}, h("td", {}, "Soak: a phase lasts at least"), h("td", {class: "num"}, g.soak + " s"),
        h("td", {class: "num"}, (g.soak_left ?? 0) + " s left")),
      h("tr", {}, h("td", {}, "Silent after"), h("td", {class: "num"}, g.silent_after + " s"), h("td", {}, "")),
    ]));
    if (g.why) out.push(h("p", {class: "hint"}, "Verdict: " + (g.verdict || "") + " — " + g.why));
  }
  out.push(h("h2", {}, "Phases"));
  if (r.phase_counts) {
    out.push(table(["Phase", "Status", "Offered", "Pending", "Confirmed", "Reverted", "Failed", "Silent", "Progress"],
      r.phase_counts.map((p) => h("tr", {"data-phase": p.phase},
        h("td", {}, (p.phase + 1) + " (" + p.percent + "%)"), h("td", {}, p.status),
        h("td", {class: "num", "data-col": "offered"}, p.offered), h("td", {class: "num"}, p.pending),
        h("td", {class: "num", "data-col": "confirmed"}, p.confirmed), h("td", {class: "num", "data-col": "reverted"}, p.reverted),
        h("td", {class: "num"}, p.failed), h("td", {class: "num"}, p.silent),
        h("td", {}, stacked(parts(p), p.offered))))));
  } else {
    out.push(h("p", {class: "error"}, "The counts cannot be read now" + (r.counts_error ? ": " + r.counts_error : ".")));
  }
  const f = r.filters;
  out.push(h("h2", {}, "Who is eligible"), h("ul", {},
    h("li", {}, "Devices of type " + r.device),
    h("li", {}, "Versions: " + (f.min_version || "any") + " to " + (f.max_version || "any")),
    h("li", {}, "Tags: " + (f.tags.length ? f.tags.join(", ") : "any")),
    h("li", {}, "MACs: " + (f.macs.length ? f.macs.join(", ") : "any")),
    h("li", {}, "Window: " + (r.window || "always") + "; rate: " + (r.rate ? r.rate + " offers a minute" : "no bound") +
      (r.approval ? "; phases advance only by hand" : ""))));
  return out;
}

export async function one(ctx) {
  const id = encodeURIComponent(ctx.arg);
  ctx.root.replaceChildren(...detail(ctx, await api("GET", "/rollouts/" + id)));
  return async () => {
    // Not while a confirmation is open: its buttons would go from under it.
    if (document.querySelector("dialog[open]")) return;
    ctx.root.replaceChildren(...detail(ctx, await api("GET", "/rollouts/" + id)));
  };
}

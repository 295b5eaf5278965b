// audit.js - the audit log screen: who did what, when, newest first, a page
// at a time (GET /api/v1/audit?before=ID&limit=N).
import {api, q} from "./api.js";
import {h, table, when} from "./dom.js";

const PAGE = 50;

export async function list(ctx) {
  const before = ctx.params.get("before") || "";
  const out = await api("GET", "/audit" + q({before, limit: PAGE}));
  ctx.root.append(h("h1", {}, "Audit log"));
  if (out.entries.length === 0) {
    ctx.root.append(h("p", {class: "empty"}, "Nothing done yet: every write through the API or this page (uploads, rollouts, pins, tags, sign-ins) is listed here with the token that made it."));
    return;
  }
  const rows = out.entries.map((e) => h("tr", {},
    h("td", {}, when(e.at)), h("td", {}, e.token), h("td", {}, e.action), h("td", {class: "wrap"}, e.target),
    h("td", {class: "num"}, e.status), h("td", {class: "wrap"}, e.outcome)));
  ctx.root.append(table(["When", "Token", "Action", "Target", "Status", "Outcome"], rows,
                        out.count + " entries" + (before ? " before #" + before : ", newest first")));
  const nav = h("div", {class: "pager"});
  if (before) nav.append(h("a", {href: "#/audit"}, "Newest"));
  if (out.next_before) nav.append(h("a", {href: "#/audit?before=" + out.next_before}, "Older"));
  ctx.root.append(nav);
}

// dom.js - building the page's elements. Every text goes in as textContent,
// never as markup: device types, versions, builds and MACs come from devices
// and are attacker-controlled (docs/WEB.md section 4). There is no innerHTML
// anywhere in the page.

// h("td", {class: "num"}, "12") -> <td class="num">12</td>. Attributes named
// on* are refused: no handler is ever made from a string.
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
                 : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) throw new Error("no inline handlers: " + k);
    if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// A labelled control: <div class="field"><label>..</label>control<span error></span></div>.
export function field(label, control, hint) {
  const id = control.id || ("f-" + Math.random().toString(36).slice(2));
  control.id = id;
  const err = h("span", {class: "field-error", id: id + "-error", "aria-live": "polite"});
  control.setAttribute("aria-describedby", id + "-error");
  return h("div", {class: "field"}, h("label", {for: id}, label), control,
           hint ? h("small", {class: "hint"}, hint) : null, err);
}

// Shows msg next to the control named name inside form (its .field-error).
export function fieldError(form, name, msg) {
  const control = form.querySelector("[name='" + CSS.escape(name) + "']");
  const slot = control ? form.querySelector("#" + CSS.escape(control.id) + "-error") : null;
  if (slot) { slot.textContent = msg; control.setAttribute("aria-invalid", "true"); control.focus(); return true; }
  return false;
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

export function table(headers, rows, caption) {
  return h("div", {class: "table-wrap"},
    h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", {scope: "col"}, t)))),
      h("tbody", {}, rows)));
}

// "2026-12-02T12:00:00.123Z" -> "2026-12-02 12:00:00" (UTC), "" for none.
export function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z").replace("Z", " UTC") : "never";
}

export function ago(ms, now) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(2) + " MiB";
}

// A confirmation dialog (the browser's own <dialog>): resolves true or false.
export function confirmDialog(question, action) {
  return new Promise((resolve) => {
    const ok = h("button", {type: "button", class: "danger"}, action);
    const no = h("button", {type: "button"}, "Cancel");
    const dlg = h("dialog", {"aria-label": action}, h("p", {}, question), h("div", {class: "row"}, ok, no));
    document.body.append(dlg);
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    ok.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dlg.addEventListener("cancel", () => done(false));
    dlg.showModal();
    no.focus();
  });
}

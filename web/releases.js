// releases.js - releases: upload (file picker or drag and drop, progress
// from XMLHttpRequest's upload events), validation errors next to their
// field, digests and size, the rollouts that use each, delete (refused
// while a rollout that is not over uses it, with the reason).
import {api, upload, q} from "./api.js";
import {h, field, fieldError, clearErrors, table, when, bytes, confirmDialog} from "./dom.js";

function uploadForm(ctx, onDone) {
  const file = h("input", {type: "file", name: "file", accept: ".bin,application/octet-stream"});
  const drop = h("div", {class: "drop", tabindex: "-1"}, "Drop a firmware image here, or choose one above.");
  const progress = h("progress", {max: 100, value: 0, hidden: true, "aria-label": "Upload progress"});
  const note = h("span", {class: "hint", "aria-live": "polite"});
  const general = h("p", {class: "error form-error", role: "alert"});
  let picked = null;
  const pick = (f) => { picked = f; note.textContent = f ? f.name + ", " + bytes(f.size) : ""; };
  file.addEventListener("change", () => pick(file.files[0] || null));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (!e.dataTransfer.files.length) return;
    file.files = e.dataTransfer.files; // the picker shows the dropped file's name too
    pick(e.dataTransfer.files[0]);
  });
  const form = h("form", {class: "card", novalidate: true},
    h("h2", {}, "Upload a release"),
    field("Device type", h("input", {name: "device", required: true, maxlength: 63}),
          "The type the devices report (x-ESP8266-device or the build's DEVICE), exactly."),
    field("Version", h("input", {name: "version", required: true, maxlength: 63}),
          "Letters, digits and . _ + -, with a digit (e.g. 2.1.0)."),
    field("Notes", h("input", {name: "notes", maxlength: 255}), "Optional: what changed."),
    field("Firmware image", file, "An ESP8266 or ESP32 .bin, 16 MiB at most; checked before it is stored."),
    drop, h("div", {class: "row"}, progress, note), general,
    h("button", {type: "submit"}, "Upload"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    general.textContent = "";
    const device = form.elements.device.value.trim(), version = form.elements.version.value.trim();
    if (!device) return fieldError(form, "device", "Give the device type.");
    if (!version) return fieldError(form, "version", "Give the version.");
    if (!picked) return fieldError(form, "file", "Choose or drop a firmware image.");
    progress.hidden = false;
    progress.value = 0;
    try {
      const rel = await upload("/releases" + q({device, version, notes: form.elements.notes.value.trim()}), picked,
        (loaded, total) => { progress.value = Math.round(100 * loaded / Math.max(1, total)); note.textContent = bytes(loaded) + " of " + bytes(total); });
      progress.value = 100;
      ctx.status("Release #" + rel.id + " (" + rel.device + " " + rel.version + ") uploaded.");
      form.reset();
      pick(null);
      onDone();
    } catch (e) {
      const name = ["body", "image", "firmware", "filesystem"].includes(e.parameter) ? "file" : e.parameter;
      if (!fieldError(form, name, e.message)) general.textContent = "Upload refused: " + e.message;
    } finally {
      progress.hidden = true;
    }
  });
  return form;
}

export async function list(ctx) {
  const box = h("div");
  const draw = async () => {
    const rels = (await api("GET", "/releases")).releases;
    if (rels.length === 0) {
      box.replaceChildren(h("p", {class: "empty"}, ctx.admin ? "No release yet: upload a firmware image with the form below."
                                                             : "No release yet: an admin token can upload one here."));
      return;
    }
    const msg = h("p", {class: "error", role: "alert", "data-testid": "release-error"});
    box.replaceChildren(table(["Release", "Device", "Version", "Size", "Digests", "Used by", "Uploaded", ""],
      rels.map((r) => {
        const fw = r.firmware || {};
        const del = ctx.admin ? h("button", {type: "button", class: "danger", "data-delete": r.id}, "Delete") : "";
        if (del) del.addEventListener("click", async () => {
          if (!(await confirmDialog("Delete release #" + r.id + " (" + r.device + " " + r.version + ")? Its file goes too unless another release uses it.", "Delete"))) return;
          msg.textContent = "";
          try { await api("DELETE", "/releases/" + r.id); ctx.status("Release #" + r.id + " deleted."); await draw(); }
          catch (e) { msg.textContent = "Release #" + r.id + " cannot be deleted: " + e.message; }
        });
        return h("tr", {"data-release": r.id},
          h("td", {}, "#" + r.id), h("td", {}, r.device), h("td", {}, r.version),
          h("td", {class: "num"}, bytes(fw.size)),
          h("td", {class: "digests"}, h("div", {}, "MD5 ", h("code", {}, fw.md5 || "")),
            h("div", {}, "SHA-256 ", h("code", {}, fw.sha256 || "")),
            fw.chip ? h("div", {class: "hint"}, fw.chip + (fw.flash_mode ? ", " + fw.flash_mode : "")) : null,
            r.filesystem ? h("div", {class: "hint"}, "filesystem " + bytes(r.filesystem.size)) : null),
          h("td", {}, (r.rollouts || []).length ? (r.rollouts || []).map((ro) =>
            h("div", {}, h("a", {href: "#/rollout/" + ro.id}, "rollout " + ro.id), " " + ro.state)) : "none"),
          h("td", {}, when(r.created) + " by " + r.created_by, r.notes ? h("div", {class: "hint"}, r.notes) : null),
          h("td", {}, del));
      })), msg);
  };
  ctx.root.append(h("h1", {}, "Releases"), box);
  await draw();
  if (ctx.admin) ctx.root.append(uploadForm(ctx, draw));
}

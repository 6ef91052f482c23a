// The clothparse page: upload a photo to /v1/parse, then show views of the cached result.
// Stage buttons and toggles only re-fetch /v1/results/{id}/overlay.png (no model runs).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { id: null, record: null, view: "parse", seq: 0, overlayUrl: null, inputUrl: null, colours: {} };
  const toggles = ["superpixels", "unpredicted_only", "boxes"];

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  async function errorText(resp) {
    try {
      const body = await resp.json();
      if (typeof body.detail === "string") return body.detail;
      return JSON.stringify(body.detail);
    } catch (e) {
      return resp.status + " " + resp.statusText;
    }
  }

  async function loadLegend() {
    try {
      const resp = await fetch("/v1/classes");
      const classes = await resp.json();
      const ul = $("legend");
      ul.textContent = "";
      for (const c of classes) {
        const rgb = "rgb(" + c.rgb.join(",") + ")";
        state.colours[c.name] = rgb;
        const li = document.createElement("li");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = rgb;
        li.append(sw, document.createTextNode(c.id + " " + c.name));
        ul.append(li);
      }
    } catch (e) {
      setStatus("could not load the legend: " + e, true);
    }
  }

  function overlayQuery() {
    const q = new URLSearchParams({ view: state.view });
    for (const t of toggles) {
      const box = $(t);
      q.set(t, box.checked && !box.disabled ? "1" : "0");
    }
    return q.toString();
  }

  async function showOverlay() {
    if (!state.id) return;
    const seq = ++state.seq;
    const resp = await fetch("/v1/results/" + state.id + "/overlay.png?" + overlayQuery());
    if (seq !== state.seq) return; // a newer view was asked for meanwhile
    if (!resp.ok) {
      setStatus(await errorText(resp), true);
      return;
    }
    const url = URL.createObjectURL(await resp.blob());
    if (state.overlayUrl) URL.revokeObjectURL(state.overlayUrl);
    state.overlayUrl = url;
    $("output").src = url;
  }

  function fillItems(record) {
    const body = $("items").querySelector("tbody");
    body.textContent = "";
    for (const it of record.items) {
      const tr = document.createElement("tr");
      const cells = [it.id, it["class"], it.score.toFixed(3), it.box.map((v) => v.toFixed(1)).join(", "), it.area];
      for (const v of cells) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.append(td);
      }
      tr.firstChild.style.borderLeft = "6px solid " + (state.colours[it["class"]] || "#888");
      tr.addEventListener("mouseenter", () => highlight(it));
      tr.addEventListener("mouseleave", () => highlight(null));
      body.append(tr);
    }
    const t = record.timings_ms || {};
    $("timings").textContent = record.items.length + " items; ms: " +
      Object.keys(t).map((k) => k + " " + t[k].toFixed(1)).join(", ");
  }

  // Draw the hovered item's box (photo pixels) on the canvas over the output image. The photo
  // sits at the overlay's top left at 1:1, so one scale (shown width / natural width) fits both axes.
  function highlight(item) {
    const img = $("output");
    const canvas = $("highlight");
    canvas.width = img.clientWidth;
    canvas.height = img.clientHeight;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!item || !img.naturalWidth) return;
    const s = img.clientWidth / img.naturalWidth;
    const [x1, y1, x2, y2] = item.box;
    ctx.fillStyle = "rgba(0,0,0,0.35)";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.clearRect(x1 * s, y1 * s, (x2 - x1) * s, (y2 - y1) * s);
    ctx.lineWidth = 3;
    ctx.strokeStyle = state.colours[item["class"]] || "#ff0";
    ctx.strokeRect(x1 * s, y1 * s, (x2 - x1) * s, (y2 - y1) * s);
    ctx.font = "bold 13px system-ui, sans-serif";
    ctx.fillStyle = "#fff";
    ctx.fillText(item["class"] + " " + item.score.toFixed(2), x1 * s + 4, Math.max(14, y1 * s - 4));
  }

  async function upload(file) {
    if (!file) return;
    if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
    state.inputUrl = URL.createObjectURL(file);
    $("input").src = state.inputUrl;
    state.id = null;
    ++state.seq;
    $("output").removeAttribute("src");
    $("labels-link").hidden = true;
    highlight(null);
    setStatus("parsing " + file.name + " ...");
    const form = new FormData();
    form.append("file", file, file.name);
    let resp;
    try {
      resp = await fetch("/v1/parse", { method: "POST", body: form });
    } catch (e) {
      setStatus("error: " + file.name + ": " + e, true);
      return;
    }
    if (!resp.ok) {
      const retry = resp.headers.get("Retry-After");
      setStatus((await errorText(resp)) + (retry ? " (retry in " + retry + " s)" : ""), true);
      return;
    }
    const record = await resp.json();
    state.id = record.id;
    state.record = record;
    fillItems(record);
    const link = $("labels-link");
    link.href = "/v1/results/" + record.id + "/labels.png";
    link.hidden = false;
    setStatus(file.name + ": " + record.image.width + "x" + record.image.height + ", " + record.items.length + " items");
    await showOverlay();
  }

  function setView(view) {
    state.view = view;
    for (const b of document.querySelectorAll(".stage")) b.classList.toggle("active", b.dataset.view === view);
    const unpred = $("unpredicted_only");
    unpred.disabled = view !== "parse"; // the grown superpixels belong to the parse view
    unpred.parentElement.classList.toggle("disabled", unpred.disabled);
    showOverlay();
  }

  function init() {
    loadLegend();
    $("file").addEventListener("change", (e) => upload(e.target.files[0]));
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
    });
    drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
    for (const b of document.querySelectorAll(".stage")) b.addEventListener("click", () => setView(b.dataset.view));
    for (const t of toggles) $(t).addEventListener("change", showOverlay);
    window.addEventListener("resize", () => highlight(null));
    setView("parse");
  }

  document.addEventListener("DOMContentLoaded", init);
})();

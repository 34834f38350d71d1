// The emovox page: upload a file or record from the microphone, show what the model says.
// Plain JavaScript, no libraries: the page must work offline, served by `emovox serve`.
"use strict";

const $ = (id) => document.getElementById(id);
const MB = 1024 * 1024;
// Colours by emotion name where there is a usual one; other labels take the palette in order.
const NAMED = { angry: "#d62728", happy: "#ff7f0e", sad: "#1f77b4", neutral: "#7f7f7f",
                fearful: "#9467bd", disgust: "#2ca02c", surprised: "#e377c2", calm: "#17becf",
                frustrated: "#8c564b", excited: "#bcbd22" };
const PALETTE = ["#8c564b", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173"];

const state = { model: null, recorder: null, busy: false, last: null };

function colorOf(label) {
  if (NAMED[label]) return NAMED[label];
  const others = (state.model ? state.model.labels : []).filter((l) => !NAMED[l]);
  const i = others.indexOf(label);
  return PALETTE[(i < 0 ? others.length : i) % PALETTE.length];
}

function setStatus(text, spinning) {
  const el = $("status");
  el.textContent = "";
  if (spinning) {
    const s = document.createElement("span");
    s.className = "spinner";
    el.appendChild(s);
  }
  el.appendChild(document.createTextNode(text || ""));
}

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
  // an error replaces the previous answer: never show another file's result under it
  if (message) $("result").hidden = true;
}

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// --- the model ------------------------------------------------------------------------------

async function loadModel() {
  try {
    const res = await fetch("/v1/model");
    if (!res.ok) throw new Error("HTTP " + res.status);
    state.model = await res.json();
    const m = state.model;
    const card = m.model_card || {};
    const parts = [`Model: ${card.name || m.name || "emovox"}`, `emotions: ${m.labels.join(", ")}`,
                   `up to ${m.limits.max_seconds} s and ${m.limits.max_upload_mb} MB per recording`];
    if (m.dimensions) parts.push(`also: ${m.dimensions.names.join(", ")}`);
    if (card.licence) parts.push(`licence: ${card.licence}`);
    $("model-info").textContent = parts.join(" \u00b7 ");
  } catch (err) {
    $("model-info").textContent = "Could not read the model description (" + err.message + ").";
  }
}

// --- sending audio --------------------------------------------------------------------------

async function analyse(blob, name) {
  if (state.busy) return;
  showError("");
  const limits = state.model ? state.model.limits : null;
  if (limits && blob.size > limits.max_upload_mb * MB) {
    showError(`${name}: ${(blob.size / MB).toFixed(1)} MB is over the server's ` +
              `${limits.max_upload_mb} MB upload limit.`);
    return;
  }
  if (blob.size === 0) {
    showError(`${name}: the file is empty.`);
    return;
  }
  state.busy = true;
  $("record").disabled = true;
  setStatus(`Analysing ${name}\u2026`, true);
  const form = new FormData();
  form.append("file", blob, name);
  const query = new URLSearchParams({ top_k: "3" });
  if ($("timeline-toggle").checked) query.set("timeline", "true");
  if ($("text-toggle").checked) query.set("with_text", "true");
  try {
    const res = await fetch("/v1/predict?" + query.toString(), { method: "POST", body: form });
    let doc = null;
    try { doc = await res.json(); } catch (_) { doc = null; }
    if (!res.ok || !doc || doc.error) {
      const why = doc && doc.error ? doc.error : `the server answered HTTP ${res.status}`;
      const retry = res.headers.get("Retry-After");
      showError(why + (retry ? ` (try again in ${retry} s)` : ""));
      setStatus("");
      return;
    }
    state.last = { blob, name };
    render(doc, name);
    setStatus("");
  } catch (err) {
    showError("Could not reach the server: " + err.message);
    setStatus("");
  } finally {
    state.busy = false;
    $("record").disabled = false;
  }
}

// --- showing the answer ---------------------------------------------------------------------

function render(doc, name) {
  $("result").hidden = false;
  $("file-name").textContent = doc.path || name;
  // an uncertain answer is still the best guess, marked as such (its note says why)
  // a model of valence/arousal/dominance alone names no emotion (label null)
  $("label").textContent = doc.label == null ? (doc.speech ? "" : "silence")
    : (doc.uncertain ? `${doc.label}?` : doc.label);
  $("label").style.color = doc.speech ? colorOf(doc.label) : "";
  const p = doc.probabilities[doc.label];
  const dur = doc.duration != null ? `${doc.duration.toFixed(1)} s` : "";
  $("confidence").textContent = [p != null ? `${(100 * p).toFixed(0)} %` : "", dur]
    .filter(Boolean).join(" \u00b7 ");
  $("note").hidden = !doc.note;
  $("note").textContent = doc.note || "";
  renderBars(doc.probabilities, doc.label);
  renderPlane(doc);
  renderText(doc);
  renderTimeline(doc.timeline, doc.duration);
  $("why-result").hidden = true;
  $("why").disabled = !doc.speech;
  $("json").textContent = JSON.stringify(doc, null, 1);
}

function renderBars(probs, top) {
  const box = $("bars");
  box.textContent = "";
  const rows = Object.entries(probs).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of rows) {
    const row = document.createElement("div");
    row.className = "bar" + (label === top ? " top" : "");
    row.dataset.label = label;
    const name = document.createElement("span");
    name.textContent = label;
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.background = colorOf(label);
    track.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * p).toFixed(1)} %`;
    row.append(name, track, value);
    box.appendChild(row);
  }
}

// What was said (`with_text`): the transcript, the text's own guess and the fused label.
function renderText(doc) {
  const box = $("text-box");
  const has = "fused_label" in doc;
  box.hidden = !has;
  if (!has) return;
  $("transcript").textContent = doc.transcript ? `\u201c${doc.transcript}\u201d` : "";
  const text = doc.text_probabilities || {};
  const top = Object.entries(text).sort((a, b) => b[1] - a[1])[0];
  const fusedP = doc.fused_probabilities ? doc.fused_probabilities[doc.fused_label] : null;
  const parts = [];
  if (top) parts.push(`words alone: ${top[0]} ${(100 * top[1]).toFixed(0)} %`);
  if (doc.fused_label) {
    parts.push(`voice and words: ${doc.fused_label}` +
               (fusedP != null ? ` ${(100 * fusedP).toFixed(0)} %` : ""));
  }
  $("fused").textContent = parts.join(" \u00b7 ");
  $("text-note").hidden = !doc.text_note;
  $("text-note").textContent = doc.text_note || "";
}

// Valence (x) against arousal (y) for a model with a VAD head: the recording as a dot, each
// timeline window with speech as a smaller one; the axes span the model's scale.
function renderPlane(doc) {
  const box = $("plane-box"), holder = $("plane");
  holder.textContent = "";
  const has = doc.valence != null && doc.arousal != null;
  box.hidden = !has;
  const dims = ["valence", "arousal", "dominance"].filter((d) => doc[d] != null);
  $("dimensions").textContent = dims.map((d) => `${d} ${doc[d].toFixed(2)}`).join(" \u00b7 ");
  if (!has) return;
  const info = (state.model && state.model.dimensions) || {};
  const windows = (doc.timeline || []).filter((s) => s.speech && s.valence != null);
  const span = (name) => {
    if (info.range && info.range[name]) return info.range[name];
    const values = [doc[name], ...windows.map((s) => s[name])];
    return [Math.min(...values) - 1, Math.max(...values) + 1];
  };
  const [v0, v1] = span("valence"), [a0, a1] = span("arousal");
  const S = 220, pad = 24;
  const x = (v) => pad + (S - 2 * pad) * Math.min(1, Math.max(0, (v - v0) / (v1 - v0 || 1)));
  const y = (a) => S - pad - (S - 2 * pad) * Math.min(1, Math.max(0, (a - a0) / (a1 - a0 || 1)));
  const chart = svg("svg", { viewBox: `0 0 ${S} ${S}`, role: "img",
                             "aria-label": "Valence and arousal" });
  chart.appendChild(svg("rect", { x: pad, y: pad, width: S - 2 * pad, height: S - 2 * pad,
                                  fill: "none", stroke: "#d8dde3" }));
  const vm = (v0 + v1) / 2, am = (a0 + a1) / 2;
  chart.appendChild(svg("line", { x1: x(vm), x2: x(vm), y1: pad, y2: S - pad, stroke: "#eceff3" }));
  chart.appendChild(svg("line", { x1: pad, x2: S - pad, y1: y(am), y2: y(am), stroke: "#eceff3" }));
  chart.appendChild(svg("text", { x: S / 2, y: S - 6, "text-anchor": "middle" },
                        `valence ${v0.toFixed(1)} \u2013 ${v1.toFixed(1)}`));
  chart.appendChild(svg("text", { x: 10, y: S / 2, "text-anchor": "middle",
                                  transform: `rotate(-90 10 ${S / 2})` },
                        `arousal ${a0.toFixed(1)} \u2013 ${a1.toFixed(1)}`));
  for (const seg of windows) {
    const dot = svg("circle", { cx: x(seg.valence), cy: y(seg.arousal), r: 3, fill: "#9aa3ad",
                                class: "window" });
    dot.appendChild(svg("title", {}, `${seg.start.toFixed(1)}\u2013${seg.end.toFixed(1)} s`));
    chart.appendChild(dot);
  }
  const me = svg("circle", { cx: x(doc.valence), cy: y(doc.arousal), r: 6,
                             fill: "#2f6fdf", class: "recording" });
  me.appendChild(svg("title", {}, `valence ${doc.valence.toFixed(2)}, arousal ${doc.arousal.toFixed(2)}`));
  chart.appendChild(me);
  holder.appendChild(chart);
}

// A line per emotion (its probability at each window's centre), grey bands where no speech.
function renderTimeline(timeline, duration) {
  const holder = $("timeline");
  holder.textContent = "";
  $("timeline-box").hidden = !(timeline && timeline.length);
  if (!timeline || !timeline.length) return;
  const W = 640, H = 220, left = 34, right = 10, top = 10, bottom = 26;
  const end = Math.max(duration || 0, ...timeline.map((s) => s.end));
  const x = (t) => left + (W - left - right) * (t / (end || 1));
  const y = (p) => top + (H - top - bottom) * (1 - p);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
                             "aria-label": "Emotion probabilities over time" });
  const step = timeline.length > 1 ? timeline[1].start - timeline[0].start
                                   : timeline[0].end - timeline[0].start;
  for (const seg of timeline) {
    if (seg.speech) continue;
    const c = (seg.start + seg.end) / 2;
    const band = svg("rect", { x: x(Math.max(0, c - step / 2)), y: top,
                               width: Math.max(1, x(c + step / 2) - x(Math.max(0, c - step / 2))),
                               height: H - top - bottom, fill: "#e6e8eb", class: "silence" });
    band.appendChild(svg("title", {}, `${seg.start.toFixed(1)}\u2013${seg.end.toFixed(1)} s: no speech`));
    chart.appendChild(band);
  }
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    chart.appendChild(svg("line", { x1: left, x2: W - right, y1: y(p), y2: y(p),
                                    stroke: p === 0 ? "#9aa3ad" : "#eceff3" }));
    chart.appendChild(svg("text", { x: left - 4, y: y(p) + 4, "text-anchor": "end" }, p.toFixed(2)));
  }
  const tickStep = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => end / s <= 8) || 1200;
  for (let t = 0; t <= end + 1e-9; t += tickStep) {
    chart.appendChild(svg("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, `${t} s`));
  }
  const labels = [];
  for (const seg of timeline) for (const k of Object.keys(seg.probabilities)) {
    if (!labels.includes(k)) labels.push(k);
  }
  for (const label of labels) {
    let points = [];
    const flush = () => {
      if (points.length === 1) {
        const [px, py] = points[0].split(",");
        chart.appendChild(svg("circle", { cx: px, cy: py, r: 2.5, fill: colorOf(label) }));
      } else if (points.length > 1) {
        const line = svg("polyline", { points: points.join(" "), fill: "none",
                                       stroke: colorOf(label), "stroke-width": 2,
                                       "data-label": label });
        line.appendChild(svg("title", {}, label));
        chart.appendChild(line);
      }
      points = [];
    };
    for (const seg of timeline) {
      if (!seg.speech) { flush(); continue; }
      const c = (seg.start + seg.end) / 2;
      points.push(`${x(c).toFixed(1)},${y(seg.probabilities[label] || 0).toFixed(1)}`);
    }
    flush();
  }
  holder.appendChild(chart);
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const label of labels) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colorOf(label);
    item.append(swatch, document.createTextNode(label));
    legend.appendChild(item);
  }
  const grey = document.createElement("span");
  const swatch = document.createElement("i");
  swatch.style.background = "#e6e8eb";
  swatch.style.height = "0.8rem";
  grey.append(swatch, document.createTextNode("no speech"));
  legend.appendChild(grey);
  holder.appendChild(legend);
}

// --- recording ------------------------------------------------------------------------------
// Raw PCM from an AudioWorklet (ScriptProcessor where there is none), written as a 16-bit WAV:
// MediaRecorder's webm/opus is not a format the server's audio reader knows.

async function startRecording() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser cannot record here (a microphone needs https or localhost).");
    return;
  }
  showError("");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
               autoGainControl: false },
    });
  } catch (err) {
    showError("No microphone: " + err.message);
    return;
  }
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(stream);
  const mute = ctx.createGain();
  mute.gain.value = 0;
  mute.connect(ctx.destination);
  const rec = { ctx, stream, source, mute, chunks: [], node: null, started: Date.now(),
                timer: null, flushed: null };
  if (ctx.audioWorklet && typeof AudioWorkletNode !== "undefined") {
    await ctx.audioWorklet.addModule("/static/pcm-worklet.js");
    rec.node = new AudioWorkletNode(ctx, "pcm-capture", { channelCount: 1,
                                                          channelCountMode: "explicit" });
    rec.node.port.onmessage = (e) => {
      if (e.data === "flushed") {
        if (rec.flushed) rec.flushed();
      } else {
        rec.chunks.push(e.data);
      }
    };
  } else {
    rec.node = ctx.createScriptProcessor(4096, 1, 1);
    rec.node.onaudioprocess = (e) => rec.chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  }
  source.connect(rec.node);
  rec.node.connect(mute);
  await ctx.resume();
  state.recorder = rec;
  const limit = state.model ? state.model.limits.max_seconds : 600;
  rec.timer = setInterval(() => {
    const s = (Date.now() - rec.started) / 1000;
    $("record-time").textContent = `recording\u2026 ${s.toFixed(1)} s`;
    if (s >= limit) stopRecording();
  }, 100);
  $("record").textContent = "\u25a0 Stop";
  $("record").classList.add("recording");
}

async function stopRecording() {
  const rec = state.recorder;
  if (!rec) return;
  state.recorder = null;
  clearInterval(rec.timer);
  if (rec.node.port) {  // ask the worklet for its last partial block
    await new Promise((resolve) => {
      rec.flushed = resolve;
      rec.node.port.postMessage("flush");
      setTimeout(resolve, 500);
    });
  }
  rec.source.disconnect();
  rec.node.disconnect();
  rec.stream.getTracks().forEach((t) => t.stop());
  const rate = rec.ctx.sampleRate;
  await rec.ctx.close();
  $("record").textContent = "\u25cf Record";
  $("record").classList.remove("recording");
  const wav = encodeWav(rec.chunks, rate);
  $("record-time").textContent = `${(wav.frames / rate).toFixed(1)} s recorded`;
  const player = $("playback");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(wav.blob);
  player.hidden = false;
  await analyse(wav.blob, "recording.wav");
}

function encodeWav(chunks, rate) {
  const frames = chunks.reduce((n, c) => n + c.length, 0);
  const buffer = new ArrayBuffer(44 + 2 * frames);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * frames, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);  // PCM
  view.setUint16(22, 1, true); view.setUint32(24, rate, true);                  // mono
  view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * frames, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) {
      const s = Math.max(-1, Math.min(1, chunk[i]));
      view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return { blob: new Blob([buffer], { type: "audio/wav" }), frames };
}

// --- why: the explanation ------------------------------------------------------------------

async function explainLast() {
  if (state.busy || !state.last) return;
  const { blob, name } = state.last;
  state.busy = true;
  $("why").disabled = true;
  setStatus(`Explaining ${name}\u2026`, true);
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const res = await fetch("/v1/explain", { method: "POST", body: form });
    let doc = null;
    try { doc = await res.json(); } catch (_) { doc = null; }
    if (!res.ok || !doc || doc.error) {
      showError(doc && doc.error ? doc.error : `the server answered HTTP ${res.status}`);
      return;
    }
    renderWhy(doc);
  } catch (err) {
    showError("Could not reach the server: " + err.message);
  } finally {
    setStatus("");
    state.busy = false;
    $("why").disabled = false;
  }
}

function renderWhy(doc) {
  $("why-result").hidden = false;
  $("why-sentence").textContent = doc.sentence || doc.label;
  const box = $("why-saliency");
  box.textContent = "";
  const sal = doc.saliency[doc.primary];
  const W = 800, H = 90, dur = Math.max(doc.duration, 1e-6);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H + 16}`, role: "img",
                            "aria-label": `${doc.primary} saliency over time` });
  for (const [a, b] of doc.regions) {
    root.appendChild(svg("rect", { class: "region", x: (a / dur) * W, y: 0,
                                   width: ((b - a) / dur) * W, height: H,
                                   fill: colorOf(doc.label), "fill-opacity": 0.18 }));
  }
  const peak = Math.max(...sal.values.map(Math.abs), 1e-12);
  const step = sal.times.length > 1 ? sal.times[1] - sal.times[0] : dur;
  sal.times.forEach((t, k) => {
    const v = sal.values[k] / peak;
    const h = Math.abs(v) * (H / 2);
    root.appendChild(svg("rect", { class: "cell", x: ((t - step / 2) / dur) * W,
                                   y: v >= 0 ? H / 2 - h : H / 2, width: (step / dur) * W,
                                   height: h, fill: v >= 0 ? "#d62728" : "#9aa5b1" }));
  });
  root.appendChild(svg("line", { x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: "#bbb" }));
  root.appendChild(svg("text", { x: 0, y: H + 13 }, "0 s"));
  root.appendChild(svg("text", { x: W, y: H + 13, "text-anchor": "end" },
                       `${dur.toFixed(1)} s`));
  box.appendChild(root);
  const body = $("why-cues").querySelector("tbody");
  body.textContent = "";
  const num = (v, d) => (v == null ? "\u2013" : Number(v).toFixed(d));
  for (const c of doc.cues) {
    const tr = document.createElement("tr");
    if (c.agrees === true) tr.className = "agrees";
    if (c.agrees === false) tr.className = "disagrees";
    for (const text of [`${c.name} (${c.unit})`, num(c.inside, 2), num(c.outside, 2),
                        num(c.z, 1), c.expected || "\u2013"]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  $("why-cues").hidden = doc.cues.length === 0;
  $("why-notes").textContent = (doc.notes || []).join(" ");
}

// --- wiring ---------------------------------------------------------------------------------

function init() {
  loadModel();
  $("why").addEventListener("click", explainLast);
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) analyse(file, file.name);
    e.target.value = "";
  });
  $("record").addEventListener("click", () => {
    if (state.recorder) stopRecording();
    else startRecording().catch((err) => showError("Recording failed: " + err.message));
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const file = e.dataTransfer.files[0];
    if (file) analyse(file, file.name);
  });
}

document.addEventListener("DOMContentLoaded", init);

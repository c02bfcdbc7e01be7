// The live page: exports the chosen model on the server (once), then runs it in an
// AudioWorklet (synth-worklet.mjs) with onnxruntime-web, playing the notes of the computer
// keyboard, of MIDI inputs or what the microphone hears. No network beyond this server.
"use strict";

const KEYS = "awsedftgyhujkolp;";  // C to E: a piano octave and a half, black keys above.
const LEAD_FRAMES = 3;  // Frames rendered ahead of the output: the latency against underruns.
let live = null;  // {context, node, model, microphone}
let octave = 4;
let rules = null;  // The server's note rules for the microphone's features.
const held = [];  // MIDI notes held, the latest last: the one that sounds.
let recording = null;  // Float32Array chunks while recording the output.
window.liveRecording = null;  // The last recording's samples and rate (the page's tests).

function modelInfo() {
  const option = $("model").selectedOptions[0];
  return option ? JSON.parse(option.dataset.info) : null;
}

async function loadModels() {
  const body = await (await fetch("/api/models")).json();
  rules = body.live;
  for (const model of body.models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.name;
    option.dataset.info = JSON.stringify(model);
    $("model").appendChild(option);
  }
  $("model").addEventListener("change", describeModel);
  describeModel();
  if (!rules.vendored) {
    showError("This installation lacks the web runtime (onnxruntime-web) the live page " +
      "runs on: install ddsp-jax from a wheel, or run python tools/vendor_web.py in its " +
      "source folder.");
    $("start").disabled = true;
  }
}

function describeModel() {
  const model = modelInfo();
  if (!model) { $("model-info").textContent = "No models found."; $("start").disabled = true; return; }
  const range = model.pitch_range_midi;
  $("model-info").textContent = range
    ? `Trained from ${midiName(range[0])} to ${midiName(range[1])}: notes outside this ` +
      "range sound less like the instrument."
    : "";
}

function status(text) { $("status").textContent = text; }

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${url}: ${response.status}`);
  }
  return response.arrayBuffer();
}

async function start() {
  showError("");
  await stop();
  const model = modelInfo();
  $("start").disabled = true;
  try {
    status(`Preparing ${model.name} for the browser (the first time takes a few seconds)...`);
    const base = `/api/models/${encodeURIComponent(model.name)}/live/`;
    const metadata = JSON.parse(new TextDecoder().decode(await bytes(base + "metadata.json")));
    const [synth, features, wasmBinary] = await Promise.all([
      bytes(base + "synth.onnx"),
      bytes(base + "features.onnx"),
      bytes("/static/vendor/ort-wasm-simd-threaded.wasm"),
    ]);
    status("Starting the audio...");
    const context = new AudioContext({ sampleRate: metadata.sample_rate, latencyHint: "interactive" });
    await context.audioWorklet.addModule("/static/synth-worklet.mjs");
    const node = new AudioWorkletNode(context, "ddsp-synth", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { metadata, synth, features, wasmBinary, rules, leadFrames: LEAD_FRAMES },
    });
    live = { context, node, model, microphone: null, ready: false };
    node.port.onmessage = (event) => heardFromWorklet(event.data);
    node.connect(context.destination);
    await context.resume();
    sendEnvelope();
  } catch (error) {
    showError(`Could not start ${model.name}: ${error.message}`);
    status("Not started.");
  } finally {
    $("start").disabled = false;
  }
}

async function stop() {
  if (!live) return;
  if (live.microphone) live.microphone.getTracks().forEach((track) => track.stop());
  await live.context.close();
  live = null;
  held.length = 0;
  $("microphone").disabled = true;
  $("record").disabled = true;
  $("meter").textContent = "";
}

function heardFromWorklet(message) {
  if (message.type === "ready") {
    live.ready = true;
    status(`Ready: ${live.model.name}, latency about ${Math.round(1000 * message.latency)} ms ` +
      "(plus the sound card's).");
    $("microphone").disabled = false;
    $("record").disabled = false;
  } else if (message.type === "stats") {
    const perFrame = message.renderMsPerFrame.toFixed(2);
    $("meter").textContent = `${message.frames} frames, ${perFrame} ms to render each, ` +
      `${message.underruns} late blocks` +
      (message.dropped ? `, ${message.dropped} frames dropped` : "") + ".";
  } else if (message.type === "heard") {
    $("heard").textContent = message.note
      ? `Hearing ${midiName(12 * Math.log2(message.f0 / 440) + 69)} (${message.f0.toFixed(1)} Hz)`
      : "Hearing no note.";
  } else if (message.type === "audio" && recording) {
    recording.push(message.samples);
  } else if (message.type === "error") {
    showError(`The synthesizer stopped: ${message.message}`);
  }
}

// The note that sounds: the latest held, its loudness from the velocity between the
// quietest and loudest notes of the model's training data.
function sendNote(velocity) {
  if (!live || !live.ready) return;
  const model = live.model;
  const quantiles = model.note_loudness_db_quantiles || [-60, -20];
  const [low, high] = [quantiles[0], quantiles[quantiles.length - 1]];
  const note = held[held.length - 1];
  const level = low + (high - low) * (velocity ?? Number($("velocity").value)) / 127;
  const f0 = note === undefined ? 0 : 440 * 2 ** ((note - 69) / 12);
  live.node.port.postMessage({ type: "note", on: note !== undefined, f0, level });
  $("playing").textContent = note === undefined ? "" :
    `Playing ${midiName(note)} (${f0.toFixed(1)} Hz)`;
  for (const key of document.querySelectorAll("#keyboard button")) {
    key.classList.toggle("down", held.includes(Number(key.dataset.note)));
  }
}

function noteOn(note, velocity) {
  if (held.includes(note)) return;
  if (live && live.microphone) useNotes();
  held.push(note);
  sendNote(velocity);
}

function noteOff(note) {
  const index = held.indexOf(note);
  if (index < 0) return;
  held.splice(index, 1);
  sendNote();
}

function keyNote(key) {
  const index = KEYS.indexOf(key);
  return index < 0 ? null : 12 * (octave + 1) + index;
}

function drawKeyboard() {
  const keyboard = $("keyboard");
  keyboard.textContent = "";
  for (const key of KEYS) {
    const note = keyNote(key);
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.note = note;
    button.className = [1, 3, 6, 8, 10].includes(note % 12) ? "black" : "white";
    button.textContent = `${midiName(note)}\n${key.toUpperCase()}`;
    button.addEventListener("pointerdown", () => noteOn(note));
    button.addEventListener("pointerup", () => noteOff(note));
    button.addEventListener("pointerleave", () => noteOff(note));
    keyboard.appendChild(button);
  }
  $("octave").textContent = octave;
}

function typing(event) {
  return ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName) &&
    event.target.type !== "range";
}

document.addEventListener("keydown", (event) => {
  if (event.repeat || typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "z" || key === "x") {
    held.length = 0;
    sendNote();
    octave = Math.max(0, Math.min(8, octave + (key === "x" ? 1 : -1)));
    drawKeyboard();
    return;
  }
  const note = keyNote(key);
  if (note !== null) { event.preventDefault(); noteOn(note); }
});

document.addEventListener("keyup", (event) => {
  const note = keyNote(event.key.toLowerCase());
  if (note !== null) noteOff(note);
});

async function connectMidi() {
  if (!navigator.requestMIDIAccess) {
    $("midi-status").textContent = "This browser has no Web MIDI.";
    return;
  }
  try {
    const access = await navigator.requestMIDIAccess();
    const listen = () => {
      const inputs = [...access.inputs.values()];
      for (const input of inputs) input.onmidimessage = midiMessage;
      $("midi-status").textContent = inputs.length
        ? `MIDI: ${inputs.map((input) => input.name).join(", ")}.`
        : "No MIDI input connected.";
    };
    access.onstatechange = listen;
    listen();
  } catch (error) {
    $("midi-status").textContent = `No MIDI access (${error.message}).`;
  }
}

function midiMessage(event) {
  const [statusByte, note, velocity] = event.data;
  const kind = statusByte & 0xf0;
  if (kind === 0x90 && velocity > 0) noteOn(note, velocity);
  else if (kind === 0x80 || (kind === 0x90 && velocity === 0)) noteOff(note);
}

function sendEnvelope() {
  if (!live) return;
  live.node.port.postMessage({
    type: "envelope",
    envelope: { attack: $("attack").value / 1000, release: $("release").value / 1000 },
  });
}

function sendShift() {
  if (!live) return;
  live.node.port.postMessage({
    type: "shift",
    shift: {
      semitones: Number($("pitch_shift").value) || 0,
      db: Number($("loudness_shift").value) || 0,
      quiet: Number($("quiet_db").value),
    },
  });
}

async function useMicrophone() {
  showError("");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    live.microphone = stream;
    live.source = live.context.createMediaStreamSource(stream);
    live.source.connect(live.node);
    sendShift();
    live.node.port.postMessage({ type: "mode", mode: "microphone" });
    $("microphone").textContent = "Stop the microphone";
  } catch (error) {
    showError(`No microphone: ${error.message}`);
  }
}

function useNotes() {
  if (!live || !live.microphone) return;
  live.source.disconnect();
  live.microphone.getTracks().forEach((track) => track.stop());
  live.microphone = null;
  live.node.port.postMessage({ type: "mode", mode: "notes" });
  $("microphone").textContent = "Use the microphone";
  $("heard").textContent = "";
}

function toggleRecording() {
  if (!live) return;
  if (recording === null) {
    recording = [];
    live.node.port.postMessage({ type: "record", on: true });
    $("record").textContent = "Stop recording";
    return;
  }
  live.node.port.postMessage({ type: "record", on: false });
  const samples = new Float32Array(recording.reduce((n, chunk) => n + chunk.length, 0));
  let offset = 0;
  for (const chunk of recording) { samples.set(chunk, offset); offset += chunk.length; }
  recording = null;
  const rate = live.context.sampleRate;
  window.liveRecording = { samples, rate };
  const url = URL.createObjectURL(wavBlob(samples, rate));
  $("recorded").src = url;
  $("recorded").hidden = false;
  $("download").href = url;
  $("download").hidden = false;
  $("record").textContent = "Record the output";
}

for (const slider of document.querySelectorAll("input[type=range]")) {
  slider.addEventListener("input", () => {
    const shown = document.querySelector(`output[for=${slider.id}]`);
    if (shown) shown.textContent = slider.value;
  });
}
$("attack").addEventListener("input", sendEnvelope);
$("release").addEventListener("input", sendEnvelope);
for (const id of ["pitch_shift", "loudness_shift", "quiet_db"]) {
  $(id).addEventListener("input", sendShift);
}
$("start").addEventListener("click", start);
$("microphone").addEventListener("click", () => (live.microphone ? useNotes() : useMicrophone()));
$("record").addEventListener("click", toggleRecording);
drawKeyboard();
loadModels();
connectMidi();

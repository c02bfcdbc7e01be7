// The timbre-transfer page: lists the models, sends the sound and the settings, polls the
// job, then shows the result. No library, no network beyond this server.
"use strict";

let recorded = null;  // A WAV Blob from the microphone, used instead of the file input.

async function toWav(blob) {
  const context = new AudioContext();
  try {
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    const mono = new Float32Array(decoded.length);
    for (let channel = 0; channel < decoded.numberOfChannels; channel++) {
      const data = decoded.getChannelData(channel);
      for (let i = 0; i < data.length; i++) mono[i] += data[i] / decoded.numberOfChannels;
    }
    return wavBlob(mono, decoded.sampleRate);
  } finally {
    context.close();
  }
}

async function loadModels() {
  const response = await fetch("/api/models");
  const body = await response.json();
  const select = $("model");
  for (const model of body.models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.name;
    option.dataset.info = JSON.stringify(model);
    select.appendChild(option);
  }
  const limits = body.limits;
  $("limits").textContent = `Up to ${Math.round(limits.max_upload_bytes / 1048576)} MB ` +
    `and ${limits.max_seconds} s of audio.`;
  select.addEventListener("change", describeModel);
  describeModel();
}

function describeModel() {
  const option = $("model").selectedOptions[0];
  if (!option) { $("model-info").textContent = "No models found."; return; }
  const model = JSON.parse(option.dataset.info);
  const parts = [`${model.sample_rate} Hz`];
  if (model.mean_pitch_midi !== null) parts.push(`mean pitch ${midiName(model.mean_pitch_midi)}`);
  if (model.pitch_range_midi) {
    parts.push(`range ${midiName(model.pitch_range_midi[0])}-${midiName(model.pitch_range_midi[1])}`);
  }
  $("model-info").textContent = parts.join(", ");
}

for (const id of ["quiet_db", "autotune_amount", "note_threshold"]) {
  $(id).addEventListener("input", () => {
    document.querySelector(`output[for=${id}]`).textContent = $(id).value;
  });
}
for (const name of ["pitch", "loudness"]) {
  $(`${name}-mode`).addEventListener("change", () => {
    $(`${name}_shift`).disabled = $(`${name}-mode`).value === "auto";
  });
}

$("record").addEventListener("click", async () => {
  if ($("record").dataset.recorder) {
    window.recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    window.recorder = new MediaRecorder(stream);
    window.recorder.ondataavailable = (event) => chunks.push(event.data);
    window.recorder.onstop = async () => {
      stream.getTracks().forEach((track) => track.stop());
      recorded = await toWav(new Blob(chunks, { type: window.recorder.mimeType }));
      $("input-player").src = URL.createObjectURL(recorded);
      $("input-player").hidden = false;
      $("record").textContent = "Record again";
      delete $("record").dataset.recorder;
      $("recording").textContent = "Recorded.";
    };
    window.recorder.start();
    $("record").dataset.recorder = "on";
    $("record").textContent = "Stop";
    $("recording").textContent = "Recording...";
  } catch (error) {
    showError(`The microphone is not available: ${error.message}`);
  }
});

$("audio").addEventListener("change", () => { recorded = null; });

async function poll(job) {
  while (true) {
    const response = await fetch(`/api/jobs/${job}`);
    const status = await response.json();
    if (status.state === "queued") {
      $("progress-text").textContent = `Waiting: position ${status.position} in the queue.`;
    } else if (status.state === "running") {
      $("bar").value = status.fraction;
      $("progress-text").textContent = `${status.stage || "starting"}: ` +
        `${Math.round(100 * status.fraction)} %`;
    } else {
      return status;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

$("transfer").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("result").hidden = true;
  const form = new FormData();
  form.append("model", $("model").value);
  const file = recorded || $("audio").files[0];
  if (!file) { showError("Choose or record a sound first."); return; }
  form.append("audio", file, recorded ? "recording.wav" : file.name);
  form.append("pitch_shift", $("pitch-mode").value === "auto" ? "auto" : $("pitch_shift").value);
  form.append("loudness_shift",
    $("loudness-mode").value === "auto" ? "auto" : $("loudness_shift").value);
  for (const id of ["quiet_db", "autotune_amount", "note_threshold"]) form.append(id, $(id).value);
  $("go").disabled = true;
  $("progress").hidden = false;
  $("bar").value = 0;
  try {
    const response = await fetch("/api/transfer", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) { showError(body.error); return; }
    const status = await poll(body.id);
    if (status.state === "error") { showError(status.message); return; }
    $("output").src = status.audio;
    $("download").href = status.audio;
    $("plot").src = status.plot;
    const report = status.report;
    $("report").textContent = `Pitch shift ${report.pitch_shift_semitones} semitones; ` +
      `loudness ${report.loudness_shift_db}; ${report.note_frames} of ${report.n_frames} ` +
      "frames are notes.";
    $("warning").textContent = report.warning || "";
    $("warning").hidden = !report.warning;
    $("result").hidden = false;
  } catch (error) {
    showError(`The server did not answer: ${error.message}`);
  } finally {
    $("go").disabled = false;
    $("progress").hidden = true;
  }
});

loadModels();

// What both pages use: WAV encoding, note names and the error line.
"use strict";

const $ = (id) => document.getElementById(id);

// 16-bit PCM WAV of mono float samples: what every audio reader takes (a browser records
// WebM or Ogg, which the server's libsndfile may not read).
function wavBlob(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + 2 * samples.length));
  const text = (offset, value) => {
    for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + 2 * samples.length, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);  // PCM
  view.setUint16(22, 1, true);  // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, 2 * rate, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, 2 * samples.length, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + 2 * i, Math.round(x * 32767), true);
  }
  return new Blob([view], { type: "audio/wav" });
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function midiName(midi) {
  const names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  const note = Math.round(midi);
  return names[note % 12] + (Math.floor(note / 12) - 1);
}


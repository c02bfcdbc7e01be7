// The live synthesizer: a model's streaming graph (synth.onnx, ddsp export --format onnx)
// run by onnxruntime-web in the audio thread. Each frame of controls (f0 in Hz, loudness in
// dB) renders one hop of audio into a queue kept a few frames ahead of the output. The
// controls come from notes (keyboard or MIDI: f0 from the note, loudness from the velocity
// through an attack/release envelope) or from the microphone (features.onnx on the last
// window of input, adjusted as `ddsp live` adjusts them).
import "./worklet-scope.mjs";
import * as ort from "./vendor/ort.wasm.bundle.min.mjs";

const QUANTUM = 128;  // Samples per process() call.

function tensor(dtype, values, shape) {
  const Type = dtype === "float64" ? Float64Array : Float32Array;
  return new ort.Tensor(dtype, values instanceof Type ? values : Type.from(values), shape);
}

class DdspSynth extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.metadata = o.metadata;
    this.hop = o.metadata.hop;
    this.rules = o.rules;  // confident, note_min_loudness_db, floor_db
    this.lead = o.leadFrames * this.hop;  // Samples rendered ahead of the output.
    this.frameSeconds = this.hop / o.metadata.sample_rate;
    this.queue = new Float32Array(this.lead + 16 * this.hop + QUANTUM);
    this.queued = 0;
    this.pending = 0;  // Samples being rendered.
    this.mode = "notes";
    this.note = { f0: 0, level: this.rules.floor_db, on: false };
    this.loudness = this.rules.floor_db;
    this.envelope = { attack: 0.02, release: 0.25 };  // Seconds over the 80 dB range.
    this.shift = { semitones: 0, db: 0, quiet: 20 };
    this.window = o.metadata.features.window;
    // The microphone's latest samples: a window, the hop and a quantum it may overrun by.
    this.input = new Float32Array(this.window + this.hop + QUANTUM);
    this.inputFresh = 0;  // Input samples after the end of the last frame's window.
    this.windows = [];  // Complete windows waiting for their frame.
    this.primed = false;  // Whether the queue has reached its lead since the last underrun.
    this.recording = false;
    this.stats = { frames: 0, underruns: 0, dropped: 0, renderSeconds: 0, lastReport: 0 };
    this.port.onmessage = (event) => this.message(event.data);
    ort.env.wasm.wasmBinary = o.wasmBinary;
    ort.env.wasm.numThreads = 1;  // No workers in an AudioWorklet.
    this.open(o).catch((error) => this.port.postMessage({ type: "error", message: String(error) }));
  }

  async open(o) {
    this.synth = await ort.InferenceSession.create(o.synth);
    this.features = await ort.InferenceSession.create(o.features);
    this.state = {};
    for (const spec of this.metadata.synth.state) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      this.state[spec.name] = tensor(spec.dtype, new Array(size).fill(spec.initial), spec.shape);
    }
    const latency = (this.lead + QUANTUM) / sampleRate + this.metadata.latency / sampleRate;
    this.port.postMessage({ type: "ready", latency });
  }

  message(data) {
    if (data.type === "note") {
      this.note = { f0: data.f0 || this.note.f0, level: data.level, on: data.on };
    } else if (data.type === "mode") {
      this.mode = data.mode;
      this.windows = [];
      this.inputFresh = 0;
    } else if (data.type === "shift") {
      this.shift = data.shift;
    } else if (data.type === "envelope") {
      this.envelope = data.envelope;
    } else if (data.type === "record") {
      this.recording = data.on;
    }
  }

  // The next frame's controls from the note and the envelope (dB moves linearly).
  noteControls() {
    const target = this.note.on ? this.note.level : this.rules.floor_db;
    const range = -this.rules.floor_db;
    if (this.loudness < target) {
      const step = range * this.frameSeconds / Math.max(this.envelope.attack, 1e-3);
      this.loudness = Math.min(target, this.loudness + step);
    } else {
      const step = range * this.frameSeconds / Math.max(this.envelope.release, 1e-3);
      this.loudness = Math.max(target, this.loudness - step);
    }
    return { f0: this.note.f0, loudness: this.loudness };
  }

  // A microphone window's features, adjusted: f0 shifted, loudness moved, and lowered by
  // the quiet setting where the frame is not a note (confidence and loudness too low).
  async heardControls(window) {
    const found = await this.features.run({ audio: tensor("float32", window, [1, window.length]) });
    const f0 = found.f0_hz.data[0];
    const loudness = found.loudness_db.data[0];
    const note = found.f0_confidence.data[0] >= this.rules.confident &&
      loudness > this.rules.note_min_loudness_db;
    let level = loudness + this.shift.db - (note ? 0 : this.shift.quiet);
    level = Math.max(level, this.rules.floor_db);
    this.port.postMessage({ type: "heard", f0, note });
    return { f0: f0 * 2 ** (this.shift.semitones / 12), loudness: level };
  }

  async render(controls) {
    const samples = controls.length * this.hop;
    const noise = new Float32Array(samples);
    for (let i = 0; i < samples; i++) noise[i] = 2 * Math.random() - 1;
    const out = await this.synth.run({
      ...this.state,
      f0_hz: tensor("float32", controls.map((c) => c.f0), [controls.length]),
      loudness_db: tensor("float32", controls.map((c) => c.loudness), [controls.length]),
      noise: tensor("float32", noise, [samples]),
    });
    for (const name of Object.keys(this.state)) this.state[name] = out["next_" + name];
    if (this.queued + samples > this.queue.length) {  // Far ahead of the output: skip it.
      this.stats.dropped += controls.length;
    } else {
      this.queue.set(out.audio.data, this.queued);
      this.queued += samples;
    }
    this.stats.frames += controls.length;
  }

  // Start rendering what the queue needs, one call at a time.
  pump() {
    if (!this.state || this.pending) return;
    let work = null;
    if (this.mode === "microphone") {
      if (this.windows.length) {
        const window = this.windows.shift();
        work = this.heardControls(window).then((controls) => this.render([controls]));
      }
    } else if (this.queued < this.lead) {
      const frames = Math.min(4, Math.ceil((this.lead - this.queued) / this.hop));
      const controls = Array.from({ length: frames }, () => this.noteControls());
      work = this.render(controls);
    }
    if (work) {
      const started = Date.now();
      this.pending = 1;
      work.catch((error) => this.port.postMessage({ type: "error", message: String(error) }))
        .finally(() => {
          this.pending = 0;
          this.stats.renderSeconds += (Date.now() - started) / 1000;  // Features included.
        });
    }
  }

  listen(input) {
    if (this.mode !== "microphone" || !input) return;
    const size = this.input.length;
    this.input.copyWithin(0, input.length);
    this.input.set(input, size - input.length);
    this.inputFresh += input.length;
    while (this.inputFresh >= this.hop) {  // A frame's window ends every hop.
      this.inputFresh -= this.hop;
      const end = size - this.inputFresh;
      this.windows.push(this.input.slice(end - this.window, end));
    }
    while (this.windows.length > 8) {  // Fallen behind: drop the oldest, keep the latency.
      this.windows.shift();
      this.stats.dropped += 1;
    }
  }

  process(inputs, outputs) {
    this.listen(inputs[0] && inputs[0][0]);
    this.pump();
    const out = outputs[0][0];
    this.primed ||= this.queued >= Math.min(this.lead, this.queue.length - QUANTUM);
    if (this.primed) {
      const take = Math.min(out.length, this.queued);
      out.set(this.queue.subarray(0, take));
      this.queue.copyWithin(0, take, this.queued);
      this.queued -= take;
      if (take < out.length) {  // Late: silence, then wait for the lead again.
        this.stats.underruns += 1;
        this.primed = false;
      }
    }
    if (this.recording) this.port.postMessage({ type: "audio", samples: out.slice() });
    if (currentTime - this.stats.lastReport > 0.5 && this.stats.frames) {
      this.stats.lastReport = currentTime;
      this.port.postMessage({
        type: "stats",
        frames: this.stats.frames,
        underruns: this.stats.underruns,
        dropped: this.stats.dropped,
        renderMsPerFrame: 1000 * this.stats.renderSeconds / this.stats.frames,
        loudness: this.mode === "microphone" ? null : this.loudness,
      });
    }
    return true;
  }
}

registerProcessor("ddsp-synth", DdspSynth);

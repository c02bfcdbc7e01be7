// What onnxruntime-web's wasm runtime reads from the global scope and an AudioWorklet's
// scope lacks: a clock. Imported before the runtime.
const origin = Date.now();
globalThis.performance ??= { timeOrigin: origin, now: () => Date.now() - origin };

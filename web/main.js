// The demo page's script: loads a `qkd export` directory with the runtime's loadModelFromUrl and
// streams a continuation, showing tokens/s. It runs the model on this (main) thread and yields to the
// event loop between tokens so the page repaints; the wasm kernels themselves use worker threads when
// the page is cross-origin isolated (web/serve.mjs sends the headers).
//
// window.qkdDemo exposes the runtime module and the last run for the console and for the browser test.

const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const demo = { qkd: null, loaded: null, lastIds: [], lastText: '', lastStats: null };
window.qkdDemo = demo;

function setStatus(text, state) {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
}

/** Yields one macrotask (a MessageChannel message is not clamped like setTimeout). */
function nextTask() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

const num = (id, fallback) => {
  const v = $(id).value.trim();
  return v === '' ? fallback : Number(v);
};

async function load() {
  $('generate').disabled = true;
  $('load').disabled = true;
  if (demo.loaded) { await demo.loaded.dispose(); demo.loaded = null; }
  const url = $('modelUrl').value.trim();
  const threads = num('threads', undefined);
  $('notes').textContent = '';
  setStatus(`loading ${url} ...`, 'loading');
  const t0 = performance.now();
  try {
    demo.loaded = await demo.qkd.loadModelFromUrl(url, {
      threads,
      onProgress: (n, total) => setStatus(`loading ${url}: ${(n / 1e6).toFixed(1)}${total ? ` / ${(total / 1e6).toFixed(1)}` : ''} MB`, 'loading'),
    });
  } catch (e) {
    setStatus(`${e.code ?? 'error'}: ${e.message}`, 'error');
    $('load').disabled = false;
    return;
  }
  const { model, backend, warnings, bytes } = demo.loaded, c = model.config;
  $('modelInfo').textContent = `${c.family}, ${c.nLayer} layers, dim ${c.dim}, vocab ${c.vocabSize}, ` +
    `${(bytes / 1e6).toFixed(2)} MB; backend ${backend.name}, ${backend.threads} thread(s)${backend.fma ? ', relaxed-SIMD FMA' : ''}`;
  $('notes').textContent = warnings.join('\n');
  setStatus(`loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`, 'ready');
  $('generate').disabled = false;
  $('load').disabled = false;
}

function sampling() {
  const greedy = $('greedy').checked;
  return {
    maxNewTokens: num('maxNew', 64), greedy, temperature: num('temperature', 1), topK: num('topK', 0),
    topP: num('topP', 1), repetitionPenalty: num('penalty', 1), seed: num('seed', 0),
  };
}

async function generate() {
  const { model, tokenizer } = demo.loaded;
  const ctrl = new AbortController();
  $('stop').onclick = () => ctrl.abort();
  $('generate').disabled = true; $('load').disabled = true; $('stop').disabled = false;
  const prompt = $('prompt').value, out = $('output');
  out.replaceChildren(Object.assign(document.createElement('span'), { className: 'prompt', textContent: prompt }));
  const gen = document.createElement('span');
  out.append(gen);
  const ids = [], it = demo.qkd.stream(model, tokenizer, prompt, { ...sampling(), signal: ctrl.signal });
  let prefillMs = 0, decodeMs = 0;
  setStatus('generating ...', 'running');
  try {
    for (;;) {
      const t0 = performance.now();
      const r = await it.next();
      const dt = performance.now() - t0;
      if (r.done) break;
      // the first step holds the prompt's prefill pass; later steps are one position each
      if (ids.length === 0) prefillMs = dt; else decodeMs += dt;
      if (r.value.id >= 0) ids.push(r.value.id);
      gen.textContent += r.value.text;
      const tps = ids.length > 1 ? (ids.length - 1) / (decodeMs / 1000) : 0;
      setStatus(`${ids.length} tokens, ${tps.toFixed(1)} tokens/s (prefill ${prefillMs.toFixed(1)} ms)`, 'running');
      await nextTask();
    }
  } catch (e) {
    setStatus(`${e.code ?? 'error'}: ${e.message}`, 'error');
    finish();
    return;
  }
  const tps = ids.length > 1 ? (ids.length - 1) / (decodeMs / 1000) : 0;
  demo.lastIds = ids; demo.lastText = gen.textContent;
  demo.lastStats = { tokens: ids.length, prefillMs, decodeMs, tokensPerSecond: tps };
  setStatus(`${ids.length} tokens, ${tps.toFixed(1)} tokens/s (prefill ${prefillMs.toFixed(1)} ms)${ctrl.signal.aborted ? ', stopped' : ''}`, 'done');
  finish();
}

function finish() {
  $('generate').disabled = false; $('load').disabled = false; $('stop').disabled = true;
}

async function main() {
  try {
    demo.qkd = await import('../dist/src/runtime/index.js');
  } catch (e) {
    setStatus(`cannot load the runtime from dist/ (run npm run build): ${e.message}`, 'error');
    return;
  }
  const q = new URLSearchParams(location.search);
  if (q.has('model')) $('modelUrl').value = q.get('model');
  if (q.has('threads')) $('threads').value = q.get('threads');
  $('load').onclick = load;
  $('generate').onclick = generate;
  if (!self.crossOriginIsolated) $('notes').textContent = 'not cross-origin isolated: the kernels will run on 1 thread';
  setStatus('runtime ready; load a model', 'idle');
  if (q.has('model')) await load();
}

main();

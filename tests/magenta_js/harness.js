// Reference runner: magenta.js (@magenta/music, Node build, tfjs cpu or wasm backend) on a checkpoint directory.
//
//   node harness.js JOB.json OUT.json
//
// JOB.json: {
//   "checkpoint": "/abs/dir",              // config.json + weights_manifest.json + shards
//   "encode_tokens": [B][steps][tracks],     // optional: z = encodeTensors(one-hot of the tokens)
//   "decode_z": [B][z],                      // optional: argmax decodeTensors(z) -> tokens
//   "decode_encoded": true,                  // optional: decode the encoded z first, then decode_z
//   "convert": [NoteSequenceLike, ...],      // optional: dataConverter.toTensor -> tokens
//   "to_tensor": [NoteSequenceLike, ...],    // optional: dataConverter.toTensor as it is (a drum
//                                            //   model's encoder input roll, every column)
//   "encode_sequences": [NoteSequenceLike, ...],  // optional: model.encode (magenta.js's own path:
//                                            //   toTensor, then the encoder) -> encoded_sequences
//   "timing": {"reps": n, "z": [B][z], "a": ns, "b": ns, "interp_steps": 8},  // optional
//   "backend": "cpu" | "wasm"                // optional: tfjs backend (default cpu)
// }
// Tokens follow bridge.core.codecs: melody 0 = no event, 1 = note-off, 2.. = pitches; drums = bitmask
// of the 9 classes. A NoteSequenceLike is {"notes": [{pitch, start, end, isDrum, program}]} with
// start/end in quantized steps.
//
// The checkpoint is served from a loopback HTTP server (127.0.0.1, ephemeral port) because
// magenta.js loads checkpoints with fetch().
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const tf = require('@tensorflow/tfjs');
const mvae = require('@magenta/music/node/music_vae');

function serve(dir) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(req.url.split('?')[0]).replace(/^\/+/, '');
    const file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, {
      // application/wasm: WebAssembly.instantiateStreaming refuses any other type
      'Content-Type': file.endsWith('.json') ? 'application/json'
          : file.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream',
      'Content-Length': body.length,
    });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Track layout of a converter spec: [{kind: 'melody'|'drums', depth}], and whether the encoder
// input is a drum roll (DrumsConverter) instead of the one-hot.
function layout(spec) {
  const mel = (a) => ({kind: 'melody', depth: a.maxPitch - a.minPitch + 3});
  const drums = {kind: 'drums', depth: 512};
  switch (spec.type) {
    case 'MelodyConverter': return {tracks: [mel(spec.args)], roll: false};
    case 'DrumsConverter': return {tracks: [drums], roll: true};
    case 'TrioConverter': return {tracks: [mel(spec.args.melArgs), mel(spec.args.bassArgs), drums], roll: false};
    default: throw new Error(`harness: unsupported converter ${spec.type}`);
  }
}

function encoderInput(tokens, lay) {
  // tokens [B][steps][tracks] -> Tensor3D (B, steps, depth). A drum model's roll is built here as TF
  // Magenta's DrumsConverter builds it (the models were trained on that): the "no hit" column set on
  // the step that has no hit. magenta.js's own DrumsConverter.toTensor sets it one step early
  // (docs/magenta-js.md); test_import_magenta.py calls that one for real ("to_tensor").
  if (lay.roll) {
    // built in plain JS: tfjs's wasm backend (2.8) has no Mod / FloorDiv kernels
    const roll = tokens.map((seq) => seq.map(([tok]) => {
      const row = [];
      for (let c = 0; c < 9; ++c) row.push((tok >> c) & 1);
      row.push(tok === 0 ? 1 : 0);  // NOR column
      return row;
    }));
    return tf.tensor3d(roll, undefined, 'float32');
  }
  return tf.tidy(() => {
    const t = tf.tensor3d(tokens, undefined, 'int32');
    const parts = lay.tracks.map((tr, i) =>
        tf.oneHot(t.slice([0, 0, i], [-1, -1, 1]).squeeze([2]), tr.depth).toFloat());
    return tf.concat(parts, 2);
  });
}

async function oneHotToTokens(oh, lay) {
  // (B, steps, sum depth) -> [B][steps][tracks] argmax per track segment
  const parts = tf.split(oh, lay.tracks.map((t) => t.depth), 2);
  const cols = [];
  for (const p of parts) {
    const a = p.argMax(2);
    cols.push(await a.array());
    a.dispose();
    p.dispose();
  }
  const [B, steps] = [cols[0].length, cols[0][0].length];
  const out = [];
  for (let b = 0; b < B; ++b) {
    const row = [];
    for (let s = 0; s < steps; ++s) row.push(cols.map((c) => c[b][s]));
    out.push(row);
  }
  return out;
}

async function convertedTokens(model, ns, lay) {
  const t = model.dataConverter.toTensor(ns);
  let tokens;
  if (lay.roll) {
    const roll = await t.array();
    tokens = roll.map((r) => [r.slice(0, 9).reduce((acc, v, c) => acc + (v ? 1 << c : 0), 0)]);
  } else {
    tokens = (await oneHotToTokens(t.expandDims(0), lay))[0];
  }
  t.dispose();
  return tokens;
}

function noteSequence(like, numSteps) {
  return {
    notes: like.notes.map((n) => ({
      pitch: n.pitch, quantizedStartStep: n.start, quantizedEndStep: n.end, velocity: 100,
      isDrum: !!n.isDrum, program: n.program || 0, instrument: n.instrument || 0,
    })),
    quantizationInfo: {stepsPerQuarter: 4},
    totalQuantizedSteps: numSteps,
    tempos: [{time: 0, qpm: 120}],
  };
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(reps, fn) {
  await fn();  // warm-up (also the first use of each tfjs kernel)
  const ms = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return {median_ms: median(ms), all_ms: ms};
}

// model.interpolate's path without tf.linspace, which the wasm backend of tfjs 2.8 lacks: the same
// work (encode both ends in one call, the straight line between them, decode every point)
async function interpolateByHand(model, a, b, steps) {
  const z = await model.encode([a, b]);
  const [za, zb] = await z.array();
  z.dispose();
  const rows = [];
  for (let i = 0; i < steps; ++i) {
    const t = i / (steps - 1);
    rows.push(za.map((v, k) => v + t * (zb[k] - v)));
  }
  const path = tf.tensor2d(rows);
  const out = await model.decode(path);
  path.dispose();
  return out;
}

async function main() {
  const [jobPath, outPath] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  const spec = JSON.parse(fs.readFileSync(path.join(job.checkpoint, 'config.json'), 'utf8'));
  const lay = layout(spec.dataConverter);
  // "backend": "cpu" (tfjs's JS kernels, the default) or "wasm" (@tensorflow/tfjs-backend-wasm, its
  // XNNPACK kernels compiled to WebAssembly, one thread under Node)
  const backend = job.backend || 'cpu';
  let wasmServer = null;
  if (backend === 'wasm') {
    // Node 20 has a global fetch, so the emscripten loader fetches its .wasm and cannot take a
    // file path: serve the package's dist/ over loopback HTTP as well
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasmServer = await serve(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
    wasm.setWasmPaths(`http://127.0.0.1:${wasmServer.address().port}/`);
  }
  try {
    if (!(await tf.setBackend(backend))) throw new Error(`harness: tfjs backend ${backend} did not start`);
    await tf.ready();
  } catch (e) {
    if (wasmServer) wasmServer.close();
    throw e;
  }
  const server = await serve(job.checkpoint);
  const url = `http://127.0.0.1:${server.address().port}`;
  const out = {backend: tf.getBackend(), tfjs_version: tf.version.tfjs};
  try {
    const model = new mvae.MusicVAE(url);
    await model.initialize();
    const numSteps = model.dataConverter.numSteps;
    out.z_dims = model.zDims;
    out.num_steps = numSteps;
    out.depth = model.dataConverter.depth;

    if (job.encode_tokens) {
      const x = encoderInput(job.encode_tokens, lay);
      const z = await model.encodeTensors(x);
      out.z = await z.array();
      x.dispose();
      z.dispose();
    }
    if (job.decode_z || (job.decode_encoded && out.z)) {
      // decode_encoded: decode the z just encoded (first), then the rows of decode_z
      const rows = (job.decode_encoded && out.z ? out.z : []).concat(job.decode_z || []);
      const z = tf.tensor2d(rows);
      const oh = await model.decodeTensors(z);
      out.decoded = await oneHotToTokens(oh, lay);
      z.dispose();
      oh.dispose();
    }
    if (job.convert) {
      out.converted = [];
      for (const like of job.convert) {
        out.converted.push(await convertedTokens(model, noteSequence(like, numSteps), lay));
      }
    }
    if (job.to_tensor) {
      out.to_tensor = [];
      for (const like of job.to_tensor) {
        const t = model.dataConverter.toTensor(noteSequence(like, numSteps));
        out.to_tensor.push(await t.array());
        t.dispose();
      }
    }
    if (job.encode_sequences) {
      const z = await model.encode(job.encode_sequences.map((like) => noteSequence(like, numSteps)));
      out.encoded_sequences = await z.array();
      z.dispose();
    }
    if (job.timing) {
      const tm = job.timing;
      const z = tf.tensor2d(tm.z);
      const a = noteSequence(tm.a, numSteps);
      const b = noteSequence(tm.b, numSteps);
      out.timing = {
        decode: await timeIt(tm.reps, () => model.decode(z)),
        interpolate: await timeIt(tm.reps, tf.getKernel('LinSpace', tf.getBackend())
            ? () => model.interpolate([a, b], tm.interp_steps)
            : () => interpolateByHand(model, a, b, tm.interp_steps)),
      };
      z.dispose();
    }
    model.dispose();
  } finally {
    server.close();
    if (wasmServer) wasmServer.close();
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});

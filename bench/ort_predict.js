// ONNX Runtime's side of the *-predict rows (bench_compare): runs an ONNX file (the one bench_lamina
// exported and bench_predict runs with Lamina) over MNIST's test images, x / 255 as (N, 28, 28)
// float32, or over an inputs file (--inputs: bench_lamina --export-inputs), in batches of --batch, with --threads intra-op threads (one inter-op thread, sequential
// execution, all graph optimizations: ONNX Runtime at its best on a CPU). Prints one JSON line as
// bench_predict does: samples per second (best and median over passes), median time per batch.
// Each batch is its own session.run call, so at batch 1 the binding's per-call cost is in the time.
// Usage: NODE_PATH=.deps/node_modules node ort_predict.js --model M.onnx --images data/mnist
//          --batch 10000 --threads 1 [--samples 10000] [--reps 5]
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const args = {images: 'data/mnist', batch: 10000, samples: 10000, threads: 1, reps: 5};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, ''), value = process.argv[i + 1];
  if (!(key in args) && key !== 'model' && key !== 'inputs') throw new Error(`unknown option --${key}`);
  if (value === undefined) throw new Error(`--${key} needs a value`);
  args[key] = ['model', 'images', 'inputs'].includes(key) ? value : Number(value);
}
if (!args.model) throw new Error('--model is required');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error(`ort_predict.js: onnxruntime-node is not installed (${e.message}); scripts/setup.sh installs it into .deps/`);
  process.exit(1);
}

// MNIST's test images (IDX, raw or gzipped) as float32 x / 255, the first `count` of them.
function readImages(dir, count) {
  let file = path.join(dir, 't10k-images-idx3-ubyte');
  let bytes = fs.existsSync(file) ? fs.readFileSync(file) : zlib.gunzipSync(fs.readFileSync(file + '.gz'));
  if (bytes.readUInt32BE(0) !== 0x803) throw new Error(`${file}: not an IDX image file`);
  const n = Math.min(count, bytes.readUInt32BE(4)), rows = bytes.readUInt32BE(8), cols = bytes.readUInt32BE(12);
  const x = new Float32Array(n * rows * cols);
  for (let i = 0; i < x.length; ++i) x[i] = bytes[16 + i] / 255;
  return {x, n, rows, cols};
}

// An inputs file (bench_lamina --export-inputs; bench/common.hpp's Inputs): "LMIN", uint32 rank,
// int64 dims, float32 values, little endian; its first `count` rows and one row's shape.
function readInputs(file, count) {
  const bytes = fs.readFileSync(file);
  if (bytes.toString('latin1', 0, 4) !== 'LMIN') throw new Error(`${file}: not an inputs file`);
  const rank = bytes.readUInt32LE(4), dims = [];
  for (let i = 0; i < rank; ++i) dims.push(Number(bytes.readBigInt64LE(8 + 8 * i)));
  const n = Math.min(count, dims[0]), per = dims.slice(1).reduce((a, b) => a * b, 1), at = 8 + 8 * rank;
  const x = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * n * per));
  return {x, n, shape: dims.slice(1)};
}

async function main() {
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: args.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = session.inputNames[0], output = session.outputNames[0];
  let x, n, shape;
  if (args.inputs) {
    ({x, n, shape} = readInputs(args.inputs, args.samples));
  } else {
    let rows, cols;
    ({x, n, rows, cols} = readImages(args.images, args.samples));
    shape = [rows, cols];
  }
  const per = shape.reduce((a, b) => a * b, 1);
  // The batches as tensors made once: the timed passes measure inference, not the copies.
  const batches = [];
  for (let b = 0; b < n; b += args.batch) {
    const m = Math.min(args.batch, n - b);
    batches.push(new ort.Tensor('float32', x.subarray(b * per, (b + m) * per), [m, ...shape]));
  }
  const pass = async () => {
    for (const t of batches) await session.run({[input]: t}, [output]);
  };
  await pass();  // warm-up
  const rates = [];
  for (let r = 0; r < args.reps; ++r) {
    const t0 = process.hrtime.bigint();
    await pass();
    rates.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(JSON.stringify({
    framework: 'onnxruntime', version: require('onnxruntime-node/package.json').version, batch: args.batch,
    threads: args.threads, samples: n, samples_per_s_max: rates[rates.length - 1], samples_per_s_median: median,
    us_per_batch_median: 1e6 * Math.min(args.batch, n) / median,
  }));
}

main().catch(e => {
  console.error(`ort_predict.js: ${e.message}`);
  process.exit(1);
});

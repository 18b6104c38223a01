// Runs every NAME.onnx that onnx_make_cases wrote with ONNX Runtime (npm onnxruntime-node, CPU),
// on NAME.input.npy and on its first sample alone, and compares with NAME.expected.npy (Lamina's
// predict) within 1e-4 + 1e-4 |y|, as check_onnx.py does for OpenCV. Exits 1 on any mismatch.
// Several inputs: NAME.input0.npy, NAME.input1.npy, ... fed to the graph's inputs in order, by
// their names; several outputs: NAME.expected0.npy, ... compared with the graph's outputs in order.
// Usage: NODE_PATH=.deps/node_modules node check_ort.js CASES_DIR
'use strict';
const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error(`FAIL: onnxruntime-node is not installed (${e.message}); scripts/setup.sh installs it into .deps/`);
  process.exit(1);
}

const ATOL = 1e-4, RTOL = 1e-4;

// A float32, C-order .npy file (format 1.0), as make_cases.cpp writes them.
function readNpy(file) {
  const b = fs.readFileSync(file);
  const headerLength = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + headerLength).toString('latin1');
  if (!header.includes("'<f4'") || !header.includes("'fortran_order': False")) throw new Error(`${file}: not float32 C-order`);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const bytes = b.subarray(10 + headerLength);
  return {shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))};
}

// NAME.what.npy, or NAME.what0.npy, NAME.what1.npy, ... in order (several inputs or outputs).
function readArrays(dir, name, what) {
  const single = path.join(dir, `${name}.${what}.npy`);
  if (fs.existsSync(single)) return [readNpy(single)];
  const found = [];
  while (fs.existsSync(path.join(dir, `${name}.${what}${found.length}.npy`)))
    found.push(readNpy(path.join(dir, `${name}.${what}${found.length}.npy`)));
  if (found.length === 0) throw new Error(`${name}: neither ${name}.${what}.npy nor ${name}.${what}0.npy`);
  return found;
}

async function main(dir) {
  const names = fs.readdirSync(dir).filter(f => f.endsWith('.onnx')).map(f => f.slice(0, -5)).sort();
  if (names.length === 0) throw new Error(`no .onnx files in ${dir}`);
  let failures = 0, worst = 0;
  for (const name of names) {
    const xs = readArrays(dir, name, 'input'), wants = readArrays(dir, name, 'expected');
    const session = await ort.InferenceSession.create(path.join(dir, `${name}.onnx`));
    // The files are in the graph's input and output order; the feeds go by the graph's names.
    if (session.inputNames.length !== xs.length || session.outputNames.length !== wants.length)
      throw new Error(`${name}: the graph has ${session.inputNames.length} inputs and ${session.outputNames.length} ` +
                      `outputs, the case ${xs.length} and ${wants.length}`);
    let max = 0, bad = 0;
    for (const n of [xs[0].shape[0], 1]) {  // the batch, and the first sample alone (dynamic batch)
      const feeds = {};
      session.inputNames.forEach((inputName, i) => {
        const x = xs[i], perSample = x.data.length / x.shape[0];
        feeds[inputName] = new ort.Tensor('float32', x.data.slice(0, n * perSample), [n, ...x.shape.slice(1)]);
      });
      const results = await session.run(feeds);
      session.outputNames.forEach((outputName, o) => {
        const want = wants[o], perOut = want.data.length / want.shape[0];
        const got = results[outputName].data;
        if (got.length !== n * perOut)
          throw new Error(`${name}: ${got.length} values in output '${outputName}' for batch ${n}, expected ${n * perOut}`);
        for (let i = 0; i < got.length; ++i) {
          const d = Math.abs(got[i] - want.data[i]);
          max = Math.max(max, d);
          if (!(d <= ATOL + RTOL * Math.abs(want.data[i]))) ++bad;
        }
      });
    }
    worst = Math.max(worst, max);
    const io = xs.length > 1 || wants.length > 1 ? ` (inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')})` : '';
    console.log(`${bad ? 'FAIL' : 'ok'} ${name}${io}: max |onnxruntime - lamina| = ${max.toExponential(2)}` +
                (bad ? `, ${bad} values off` : ''));
    failures += bad ? 1 : 0;
  }
  console.log(`onnxruntime ${require('onnxruntime-node/package.json').version}: ${names.length - failures} of ` +
              `${names.length} models match within ${ATOL} + ${RTOL} |lamina|; worst ${worst.toExponential(2)}`);
  return failures;
}

main(process.argv[2]).then(f => process.exit(f ? 1 : 0), e => { console.error(`FAIL: ${e.message}`); process.exit(1); });

#!/usr/bin/env node
// check_report.js judged on pages whose faults we know: sample.html (hand-written in the
// renderer's shape, with sample.json as its report) must pass, and each copy broken below in one
// way must fail with that fault named. One browser for all of them.
// Usage: selftest.js [ARTIFACT_DIR]. Exit 0, 1 (a fault went unnoticed or the sample failed), 77 (skip).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { launch, check_page, SKIP } = require('./check_report.js');

const dir = __dirname;
const sample = fs.readFileSync(path.join(dir, 'sample.html'), 'utf8');
const report = JSON.parse(fs.readFileSync(path.join(dir, 'sample.json'), 'utf8'));

// Replaces `from` (which must occur) in the sample.
const edit = (from, to) => html => {
  if (!html.includes(from)) throw new Error(`selftest: the sample no longer contains ${JSON.stringify(from)}`);
  return html.replace(from, to);
};
const cell = (t, p) => new RegExp(`\\s*<rect class="cell" data-true="${t}" data-pred="${p}"[^>]*/><text[^>]*>\\d+</text>`);
const drop = re => html => {
  if (!re.test(html)) throw new Error(`selftest: the sample no longer matches ${re}`);
  return html.replace(re, '');
};

const broken = [
  { name: 'a series missing', change: drop(/\s*<path class="series" data-series="val_loss"[^>]*\/>/),
    expect: [/series "val_loss": expected one path.series, found 0/] },
  { name: 'a series twice', change: edit('data-series="val_accuracy"', 'data-series="accuracy"'),
    expect: [/series "accuracy": expected one path.series, found 2/, /series "val_accuracy": expected one/] },
  { name: 'a series the history lacks', change: edit('data-series="learning_rate"', 'data-series="lr"'),
    expect: [/path.series "lr" is not a series/] },
  { name: 'a point short', change: edit('d="M40 150 L160 60 L280 30"', 'd="M40 150 L160 60"'),
    expect: [/series "accuracy": the path has 2 points, the history 3 values/] },
  { name: 'validation on other axes', change: html => edit('<path class="series" data-series="val_accuracy" stroke="#ff7f0e" d="M40 145 L160 80 L280 40"/>', '')(
      edit('<path class="series" data-series="learning_rate"', '<path class="series" data-series="val_accuracy" d="M40 145 L160 80 L280 40"/><path class="series" data-series="learning_rate"')(html)),
    expect: [/"val_accuracy" is not on the same axes as "accuracy"/] },
  { name: 'an axis label missing', change: drop(/\s*<text class="axis-label"[^>]*>learning rate<\/text>/),
    expect: [/chart "learning_rate": expected x and y axis labels, found 1/] },
  { name: 'an empty axis label', change: edit('>accuracy</text>', '> </text>'),
    expect: [/chart "accuracy": an empty axis label/] },
  { name: 'a matrix cell missing', change: drop(cell(2, 1)), expect: [/8 cells for 3 classes/] },
  { name: 'a matrix cell twice', change: edit('data-true="2" data-pred="1"', 'data-true="2" data-pred="2"'),
    expect: [/two cells for true 2, predicted 2/] },
  { name: 'a wrong count', change: edit('<text x="115" y="100">17</text>', '<text x="115" y="100">71</text>'),
    expect: [/cell \(1, 1\) does not show its count 17/] },
  { name: 'a matrix without colours', change: html => html.replace(/ fill="#[0-9a-f]{6}"/g, ' fill="#abcdef"'),
    expect: [/have the same colour/] },
  { name: 'a per-class row too many', change: edit('</tbody></table></div>\n<h2>Model', '<tr><td>3</td></tr></tbody></table></div>\n<h2>Model'),
    expect: [/table.per-class has 4 body rows for 3 classes/] },
  { name: 'no model summary', change: drop(/<pre class="summary">[^]*?<\/pre>/), expect: [/expected one non-empty pre.summary/] },
  { name: 'a summary with other parameters', change: edit('Total params: 131', 'Total params: 132'),
    expect: [/does not show the report's 131 parameters/] },
  { name: 'no CSP', change: drop(/<meta http-equiv="Content-Security-Policy"[^>]*>/), expect: [/expected one Content-Security-Policy meta, found 0/] },
  { name: 'a CSP that lets scripts in', change: edit("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"),
    expect: [/the CSP allows scripts/] },
  { name: 'an inline script', change: edit('</body>', '<script>document.title = "x"</script></body>'),
    expect: [/1 <script> element/, /console error: .*Content Security Policy/, /Content-Security-Policy violation: script-src/] },
  { name: 'an onload handler', change: edit('<body>', '<body onload="void 0">'), expect: [/script in an attribute: <body onload>/] },
  { name: 'an image from a file', change: edit('<p class="tokens">', '<img src="pixel.png" alt=""><p class="tokens">'),
    expect: [/an <img> is not a data:image URI: pixel.png/, /Content-Security-Policy violation: img-src blocked file/] },
  // Without the CSP the browser does fetch it: the request itself is caught.
  { name: 'an image from a file, no CSP', change: html => drop(/<meta http-equiv="Content-Security-Policy"[^>]*>/)(
      edit('<p class="tokens">', '<img src="pixel.png" alt=""><p class="tokens">')(html)),
    expect: [/network request: GET file:.*pixel.png/] },
  { name: 'a stylesheet from elsewhere', change: edit('</head>', '<link rel="stylesheet" href="x.css"></head>'),
    expect: [/element that may load from elsewhere: <link/] },
  { name: 'a broken data image', change: html => html.replace(/base64,[A-Za-z0-9+/=]+/g, 'base64,AAAA'),
    expect: [/an <img> does not decode/] },
  { name: 'no gallery', change: html => html.replace(/<figure class="wrong">.*?<\/figure>\n/g, ''),
    expect: [/expected a gallery of wrong predictions/] },
  { name: 'a token without a score', change: edit('data-score="-0.3"', 'data-score="high"'), expect: [/span.token with data-score "high"/] },
  { name: 'a finished page that reloads itself', change: edit('</title>', '</title><meta http-equiv="refresh" content="5">'),
    expect: [/the finished report's page still reloads itself/] },
  { name: 'a live page that does not reload', report: { ...report, in_progress: true },
    change: html => html, expect: [/the report is in progress but the page has 0 meta refresh tags/] },
  { name: 'too wide for a phone', change: edit('<h1>Training report</h1>', '<h1 style="width: 900px">Training report</h1>'),
    expect: [/at 375 px: the page is \d+ px wide/] },
  { name: 'a fixed-size chart', change: edit('<svg class="chart" data-chart="loss" viewBox="0 0 320 200"', '<svg class="chart" data-chart="loss" viewBox="0 0 320 200" style="width: 700px; min-width: 700px"'),
    expect: [/at 375 px: svg.chart spans/] },
  { name: 'too wide to print', change: edit('@media print {', '@media print { body { min-width: 1000px } '),
    expect: [/in print media the page is \d+ px wide/], print: true },
];

async function main() {
  const artifacts = process.argv[2] || path.join(os.tmpdir(), 'lamina-report-selftest');
  const got = await launch();
  if (got.skip) { console.log(`SKIP: ${got.skip}`); process.exit(SKIP); }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lamina-report-'));
  let failures = 0;
  try {
    const base = { artifacts, name: 'sample', classes: 3, gallery: true, summary: true, widths: [375, 1280], clip_height: 0, screenshots: true, print: true };
    const good = await check_page(got.browser, path.join(dir, 'sample.html'), report, base);
    if (good.errors.length) { failures++; console.error(`FAIL: sample.html should pass:\n  ${good.errors.join('\n  ')}`); }
    else console.log('ok: sample.html passes');
    for (const b of broken) {
      const file = path.join(work, 'page.html');
      fs.writeFileSync(file, b.change(sample));
      // Screenshots and the PDF take most of a check's time; only the print case needs print.
      const r = await check_page(got.browser, file, b.report || report,
                                 { ...base, artifacts: work, name: 'broken', widths: [375], screenshots: false, print: !!b.print });
      const missed = b.expect.filter(re => !r.errors.some(e => re.test(e)));
      if (missed.length) {
        failures++;
        console.error(`FAIL: ${b.name}: the checker did not say ${missed.join(', ')}; it said:\n  ${r.errors.join('\n  ') || '(nothing)'}`);
      } else {
        console.log(`ok: ${b.name}: ${r.errors[0]}`);
      }
    }
  } finally {
    await got.browser.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`${broken.length + 1 - failures} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}
main().catch(e => { console.error(`FAIL: ${e.stack || e}`); process.exit(1); });

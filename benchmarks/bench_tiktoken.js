#!/usr/bin/env node
// tiktoken's side of bench_tokenizer: encodes one UTF-8 file with the "gpt2" encoding's
// encode_ordinary on one thread, `runs` times, and prints one JSON line:
//   {"mb_per_s": median MB/s, "ids": id count, "hash": FNV-1a over the ids as u32 LE}
// so that the C++ side can check both produced the same ids.
// Usage: node benchmarks/bench_tiktoken.js FILE [runs=5] [tiktoken module dir]
const fs = require("fs");
const path = require("path");

const [file, runsArg, modDir] = process.argv.slice(2);
const tiktoken = require(modDir || path.join(__dirname, "..", "tests", "reference", "node_modules", "tiktoken"));
const bytes = fs.readFileSync(file);
const text = bytes.toString("utf8");
const runs = Number(runsArg || 5);

const enc = tiktoken.get_encoding("gpt2");
enc.encode_ordinary(text.slice(0, 100000));  // warm up
const times = [];
let ids;
for (let r = 0; r < runs; ++r) {
  const t0 = process.hrtime.bigint();
  ids = enc.encode_ordinary(text);
  times.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
times.sort((a, b) => a - b);
let h = 0x811c9dc5;
for (const id of ids) {
  for (let k = 0; k < 4; ++k) h = Math.imul(h ^ ((id >>> (8 * k)) & 255), 0x01000193) >>> 0;
}
console.log(JSON.stringify({ mb_per_s: bytes.length / 1e6 / times[Math.floor(runs / 2)], ids: ids.length, hash: h }));
enc.free();

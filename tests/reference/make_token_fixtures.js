#!/usr/bin/env node
// Writes tests/fixtures/tokenizer/<name>.json: for each text of tests/fixtures/tokenizer/<name>.txt
// (texts separated by lines holding only "\u241E" — the record separator symbol), the ids that
// tiktoken's "gpt2" encoding gives with encode_ordinary. The independent oracle for test_tokenizer.
// Usage: npm install --prefix tests/reference && node tests/reference/make_token_fixtures.js
const fs = require("fs");
const path = require("path");
const { get_encoding } = require(path.join(__dirname, "node_modules", "tiktoken"));

const dir = path.join(__dirname, "..", "fixtures", "tokenizer");
const enc = get_encoding("gpt2");
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
  const texts = fs.readFileSync(path.join(dir, f), "utf8").split("\n\u241E\n");
  const cases = texts.map((text) => ({ text, ids: Array.from(enc.encode_ordinary(text)) }));
  const out = path.join(dir, f.replace(/\.txt$/, ".json"));
  fs.writeFileSync(out, JSON.stringify({ source: f, oracle: "tiktoken gpt2 encode_ordinary", cases }) + "\n");
  const n = cases.reduce((s, c) => s + c.ids.length, 0);
  console.log(`${out}: ${cases.length} texts, ${n} ids`);
}
enc.free();

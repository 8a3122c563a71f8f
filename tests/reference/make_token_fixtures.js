#!/usr/bin/env node
// Writes <dir>/<name>.ids for every <dir>/<name>.txt: the ids that tiktoken's "gpt2" encoding gives
// with encode_ordinary, the independent oracle of test_tokenizer.cpp.
//   <name>.txt  UTF-8 texts separated by "\n\u241E\n" (a line holding only the record-separator symbol)
//   <name>.ids  for each text in order, its ids as little-endian u16 (GPT-2's ids are < 50257)
//               followed by the terminator 0xFFFF
// Usage: npm install --prefix tests/reference
//        node tests/reference/make_token_fixtures.js [dir]   (default tests/fixtures/tokenizer)
// Fresh texts: make_tokenizer_corpus.py --seed 7 --out /tmp/fresh && node make_token_fixtures.js /tmp/fresh
//              && TINYLLM_TOKENIZER_PARITY_DIR=/tmp/fresh build/tests/tinyllm_tests -tc='*tiktoken*'
const fs = require("fs");
const path = require("path");
const { get_encoding } = require(path.join(__dirname, "node_modules", "tiktoken"));

const dir = process.argv[2] || path.join(__dirname, "..", "fixtures", "tokenizer");
const enc = get_encoding("gpt2");
let all = 0;
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
  const bytes = fs.readFileSync(path.join(dir, f));
  const text = bytes.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(bytes)) throw new Error(`${f}: not valid UTF-8`);
  const texts = text.split("\n\u241E\n");
  const out = [];
  for (const t of texts) {
    for (const id of enc.encode_ordinary(t)) {
      if (id >= 0xffff) throw new Error(`${f}: id ${id} does not fit u16`);
      out.push(id);
    }
    out.push(0xffff);
  }
  const buf = Buffer.alloc(out.length * 2);
  out.forEach((v, i) => buf.writeUInt16LE(v, i * 2));
  const dest = path.join(dir, f.replace(/\.txt$/, ".ids"));
  fs.writeFileSync(dest, buf);
  all += out.length - texts.length;
  console.log(`${dest}: ${texts.length} texts, ${bytes.length} bytes, ${out.length - texts.length} ids`);
}
console.log(`${all} ids in all`);
enc.free();

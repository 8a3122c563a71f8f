#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* (small files) from the test fixtures; run from
the repository root. The fuzzers grow their own corpora from these; crashes found are committed next
to them as crash-* files. fuzz_q8_folder's seed is the JSON header of tests/fixtures/f32-hub saved as
Q8: give that folder as the argument (`tinyllm quantize tests/fixtures/f32-hub /tmp/q8` writes it).

  python3 fuzz/make_seeds.py [Q8_FOLDER]"""
import json
import os
import random
import struct
import sys

root = "fuzz/corpus"


def put(target, name, data):
    os.makedirs(f"{root}/{target}", exist_ok=True)
    with open(f"{root}/{target}/seed-{name}", "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] in order."""
    header, offset, blob = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blob += data
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


# fuzz_safetensors: the 1-layer model its config.json describes (vocab 8, 4 positions, width 4).
rng = random.Random(0)
V, P, C = 8, 4, 4
shapes = [("wte.weight", [V, C]), ("wpe.weight", [P, C])]
for n, s in [("ln_1.weight", [C]), ("ln_1.bias", [C]), ("attn.c_attn.weight", [C, 3 * C]), ("attn.c_attn.bias", [3 * C]),
             ("attn.c_proj.weight", [C, C]), ("attn.c_proj.bias", [C]), ("ln_2.weight", [C]), ("ln_2.bias", [C]),
             ("mlp.c_fc.weight", [C, 4 * C]), ("mlp.c_fc.bias", [4 * C]), ("mlp.c_proj.weight", [4 * C, C]),
             ("mlp.c_proj.bias", [C])]:
    shapes.append(("h.0." + n, s))
shapes += [("ln_f.weight", [C]), ("ln_f.bias", [C])]


def numel(s):
    n = 1
    for d in s:
        n *= d
    return n


f32 = [(n, "F32", s, struct.pack(f"<{numel(s)}f", *[rng.gauss(0, 0.02) for _ in range(numel(s))])) for n, s in shapes]
f16 = [(n, "F16", s, struct.pack(f"<{numel(s)}e", *[rng.gauss(0, 0.02) for _ in range(numel(s))])) for n, s in shapes]
put("fuzz_safetensors", "model-f32", safetensors(f32, {"format": "pt"}))
put("fuzz_safetensors", "model-f16-prefixed", safetensors([("transformer." + n, d, s, b) for n, d, s, b in f16]))
put("fuzz_safetensors", "untied-head", safetensors(f32 + [("lm_head.weight", "F32", [V, C], bytes(V * C * 4))]))
put("fuzz_safetensors", "empty-header", safetensors([]))
put("fuzz_safetensors", "dtypes", safetensors([(d, d, [2], bytes(2 * k)) for d, k in
                                               [("F64", 8), ("BF16", 2), ("I8", 1), ("U64", 8), ("BOOL", 1)]]))

# fuzz_config: config.json and generation_config.json texts.
for name in ["tests/fixtures/f32-hub/config.json", "models/tiny-sotu/config.json"]:
    put("fuzz_config", name.split("/")[-2], open(name).read())
put("fuzz_config", "generation", json.dumps({"eos_token_id": [50256, 198], "bos_token_id": 50256, "max_length": 20}))
put("fuzz_config", "old-n-ctx", json.dumps({"n_ctx": 32, "vocab_size": 300, "n_embd": 8, "n_layer": 1, "n_head": 2,
                                            "n_inner": 12, "activation_function": "gelu", "eos_token_id": None}))

# fuzz_tokenizer_files: vocab.json NUL merges.txt, and tokenizer.json.
hub = "tests/fixtures/f32-hub"
put("fuzz_tokenizer_files", "vocab-merges", open(f"{hub}/vocab.json").read() + "\0" + open(f"{hub}/merges.txt").read())
put("fuzz_tokenizer_files", "tokenizer-json", open("tests/fixtures/bf16-untied-tokjson/tokenizer.json").read())

# fuzz_tokenizer: text of every kind the tokenizer tests use (the first 600 bytes of each).
for name in ["english", "code", "cjk", "marks_emoji", "numbers", "whitespace", "random", "scripts"]:
    put("fuzz_tokenizer", name, open(f"tests/fixtures/tokenizer/{name}.txt", "rb").read()[:600])
put("fuzz_tokenizer", "specials", "a<|endoftext|>b<|endoftext|><|endoftext|> <|endoftext \xff\xfe")

# fuzz_stream_decoder: ids of multi-byte characters split across tokens (two bytes each).
rng = random.Random(1)
put("fuzz_stream_decoder", "random", bytes([0]) + bytes(rng.randrange(256) for _ in range(64)))
put("fuzz_stream_decoder", "special", bytes([1]) + struct.pack(">8H", 50256, 12, 50256, 447, 247, 5099, 50256, 100))

# fuzz_generation_config and fuzz_stop_strings: byte strings that the targets read field by field.
for i in range(2):
    put("fuzz_generation_config", f"random-{i}", bytes(rng.randrange(256) for _ in range(96)))


def generation_input(do_sample=0, beams=1, returns=1, lookup=0, stop=b"", top_logprobs=0):
    """Valid configs, in the target's field order: small ints are value + 1, small floats value * 8."""
    si = lambda v: bytes([v + 1])
    sf = lambda x: bytes([int(x * 8)])
    out = si(6) + si(5) + bytes([do_sample]) + sf(1.0) + si(1) + sf(1.0) + bytes(4) + bytes([0]) + si(0) + si(0)
    out += (bytes([1, len(stop)]) + stop) if stop else bytes([0])
    out += sf(1.0) + si(0) + bytes([0]) + sf(0) + sf(1.0) + si(beams) + sf(2.0) + bytes([1]) + si(returns)
    out += si(top_logprobs) + si(lookup) + si(2) + bytes([0]) + bytes([3, 10, 20, 30, 40])
    return out


put("fuzz_generation_config", "greedy", generation_input())
put("fuzz_generation_config", "sample", generation_input(do_sample=1, returns=3, stop=b"e", top_logprobs=2))
put("fuzz_generation_config", "beams", generation_input(beams=4, returns=2))
put("fuzz_generation_config", "lookup", generation_input(lookup=3))


def stop_input(prompt, stops, tokens):
    def field(s):
        return bytes([len(s.encode())]) + s.encode()
    return field(prompt) + bytes([len(stops)]) + b"".join(map(field, stops)) + b"".join(map(field, tokens))


put("fuzz_stop_strings", "span", stop_input("Hello", ["stop", "at"], ["s", "t", "opera", "at"]))
put("fuzz_stop_strings", "prompt", stop_input("say stop", ["stop"], ["", " now", "sto", "p"]))
put("fuzz_stop_strings", "utf8", stop_input("", ["\u00e9t\u00e9"], ["\u00e9", "t\u00e9!"]))

# fuzz_q8_folder: the header of the Q8 file, without its length.
if len(sys.argv) > 1:
    with open(f"{sys.argv[1]}/model.safetensors", "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        put("fuzz_q8_folder", "f32-hub-q8", f.read(n))

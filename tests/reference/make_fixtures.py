#!/usr/bin/env python3
"""Writes the test fixtures: small random GPT-2 folders with the logits and greedy ids that the PyTorch
oracle (gpt2_oracle.py, float64) computes for them, and the oracle's greedy continuations of the demo
model. Re-runnable; output is deterministic.

Needs Debian's python3-torch (apt-get install python3-torch), and for the demo fixture the npm
package tiktoken (npm install --prefix tests/reference) to turn prompts into ids and ids into text.

Usage: /usr/bin/python3 tests/reference/make_fixtures.py
"""
import json
import math
import os
import re
import struct
import subprocess
import sys
from collections import Counter

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, HERE)
import gpt2_oracle  # noqa: E402

# --- safetensors, written and read by hand (torch 1.13 has no safetensors) -----------------------


def to_bytes(t, dtype):
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.float().numpy().tobytes()
    if dtype == "F16":
        return t.half().numpy().tobytes()
    if dtype == "BF16":
        return t.bfloat16().view(torch.int16).numpy().tobytes()
    raise ValueError(dtype)


def rounded(t, dtype):
    """The float64 values a loader sees after the tensor is stored as dtype."""
    if dtype == "F16":
        return t.half().double()
    if dtype == "BF16":
        return t.bfloat16().double()
    return t.float().double()


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, tensor, dtype)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t, dtype in tensors:
        b = to_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # align the data, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = bytearray(data[b:end])
        if e["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif e["dtype"] == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16)
        elif e["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            continue
        out[name] = t.double().reshape(e["shape"])
    return out


# --- a small byte-level BPE tokenizer in GPT-2's file formats ------------------------------------


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


TRAIN_TEXT = ("The quick brown fox jumps over the lazy dog. It's the state of the union; we've said it "
              "before and we'll say it again: 1234 5678 90! Call me Ishmael. The whale, the sea, the ship. ") * 4


def train_bpe(n_merges):
    """Plain BPE training (most frequent pair first) over GPT-2-style pieces of TRAIN_TEXT."""
    b2u = bytes_to_unicode()
    pieces = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+", TRAIN_TEXT)
    words = Counter(tuple(b2u[b] for b in p.encode()) for p in pieces)
    vocab = [b2u[b] for b in range(256)]
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for word, c in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        vocab.append(a + b)
        new_words = Counter()
        for word, c in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += c
        words = new_words
    vocab.append("<|endoftext|>")
    return vocab, merges


def write_tokenizer(d, vocab, merges, as_tokenizer_json):
    if as_tokenizer_json:
        tj = {"version": "1.0",
              "added_tokens": [{"id": len(vocab) - 1, "content": "<|endoftext|>", "special": True}],
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
              "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)},
                        "merges": [f"{a} {b}" for a, b in merges]}}
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        return
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


# --- random GPT-2 folders -------------------------------------------------------------------------


def random_weights(cfg, gen, untied):
    V, P, C, L = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"]
    I = cfg.get("n_inner") or 4 * C
    r = lambda *shape, std=1.0: torch.randn(*shape, generator=gen, dtype=torch.float64) * std
    w = {"wte.weight": r(V, C, std=0.5), "wpe.weight": r(P, C, std=0.2)}
    for l in range(L):
        p = f"h.{l}."
        w[p + "ln_1.weight"] = 1 + r(C, std=0.1)
        w[p + "ln_1.bias"] = r(C, std=0.1)
        w[p + "attn.c_attn.weight"] = r(C, 3 * C, std=1 / math.sqrt(C))
        w[p + "attn.c_attn.bias"] = r(3 * C, std=0.1)
        w[p + "attn.c_proj.weight"] = r(C, C, std=0.5 / math.sqrt(C))
        w[p + "attn.c_proj.bias"] = r(C, std=0.1)
        w[p + "ln_2.weight"] = 1 + r(C, std=0.1)
        w[p + "ln_2.bias"] = r(C, std=0.1)
        w[p + "mlp.c_fc.weight"] = r(C, I, std=1 / math.sqrt(C))
        w[p + "mlp.c_fc.bias"] = r(I, std=0.1)
        w[p + "mlp.c_proj.weight"] = r(I, C, std=0.5 / math.sqrt(I))
        w[p + "mlp.c_proj.bias"] = r(C, std=0.1)
    w["ln_f.weight"] = 1 + r(C, std=0.1)
    w["ln_f.bias"] = r(C, std=0.1)
    if untied:
        w["lm_head.weight"] = r(V, C, std=0.5)
    return w


# name, config overrides, options
MODELS = [
    ("f32-hub", dict(n_embd=64, n_head=4, n_layer=2, n_positions=64),
     dict(dtype="F32", prefix="", attn_bias=True)),
    ("f16-prefix-odd", dict(n_embd=40, n_head=5, n_layer=2, n_positions=48),
     dict(dtype="F16", prefix="transformer.")),
    ("bf16-untied-tokjson", dict(n_embd=48, n_head=3, n_layer=3, n_positions=40, extra_vocab=7),
     dict(dtype="BF16", prefix="", untied=True, tokenizer_json=True)),
    ("f32-sharded-inner", dict(n_embd=36, n_head=3, n_layer=2, n_positions=32, n_inner=100,
                               activation_function="gelu", scale_attn_by_inverse_layer_idx=True),
     dict(dtype="F32", prefix="transformer.", shards=2)),
]


def make_model(name, over, opt, vocab, merges, seed):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    V = len(vocab) + over.pop("extra_vocab", 0)  # extra_vocab: model vocab larger than the tokenizer's
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_ctx": over["n_positions"],
           "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "n_inner": None,
           "bos_token_id": len(vocab) - 1, "eos_token_id": len(vocab) - 1}
    cfg.update(over)
    w = random_weights(cfg, gen, opt.get("untied", False))
    dtype, prefix = opt["dtype"], opt["prefix"]
    tensors = [(("" if k == "lm_head.weight" else prefix) + k, t, dtype) for k, t in w.items()]
    if opt.get("attn_bias"):  # the hub's causal-mask buffers, which loaders must ignore
        P = cfg["n_positions"]
        for l in range(cfg["n_layer"]):
            tensors.append((f"{prefix}h.{l}.attn.bias", torch.tril(torch.ones(1, 1, P, P)), "F32"))
            tensors.append((f"{prefix}h.{l}.attn.masked_bias", torch.tensor(-1e4), "F32"))
    shards = opt.get("shards", 1)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
    else:
        weight_map = {}
        per = math.ceil(len(tensors) / shards)
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(d, fname), part, {"format": "pt"})
            weight_map.update({n: fname for n, _, _ in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_tokenizer(d, vocab, merges, opt.get("tokenizer_json", False))

    # The oracle sees the weights as the loader will: rounded to the stored dtype.
    wr = {k: rounded(t, dtype) for k, t in w.items()}
    ids = [int(i) for i in torch.randint(0, V, (min(cfg["n_positions"], 24),), generator=gen)]
    logits = gpt2_oracle.forward(wr, cfg, ids)
    with open(os.path.join(d, "expected_logits.f32"), "wb") as f:
        f.write(logits.float().numpy().tobytes())
    prompt = ids[:5]
    max_new = cfg["n_positions"] - len(prompt) + 3  # runs into n_positions: generation must stop there
    greedy, margin = gpt2_oracle.greedy(wr, cfg, prompt, max_new, eos=cfg["eos_token_id"])
    expected = {"ids": ids, "logits_shape": [len(ids), V], "logits_file": "expected_logits.f32",
                "greedy": {"prompt": prompt, "max_new_tokens": max_new, "ids": greedy,
                           "min_top2_margin": margin},
                "note": "written by tests/reference/make_fixtures.py (PyTorch float64 oracle)"}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"{name}: vocab {V}, {len(tensors)} tensors, greedy {len(greedy) - len(prompt)} new ids, "
          f"min top-2 margin {margin:.4f}")


# --- the demo model's greedy continuations ---------------------------------------------------------

DEMO_PROMPTS = [
    "The state of the Union",
    "Call me Ishmael.",
    "My fellow citizens, we",
    "The whale",
    "In the year 1800, Congress",
    "It's a fine day; we've",
]


def tiktoken(op, payload):
    script = ("const t=require('tiktoken');const e=t.get_encoding('gpt2');const inp=JSON.parse(require('fs')"
              ".readFileSync(0,'utf8'));let out;"
              "if(inp.op==='encode'){out=inp.texts.map(s=>Array.from(e.encode(s,'all')));}"
              "else{out=inp.ids.map(a=>new TextDecoder().decode(e.decode(Uint32Array.from(a))));}"
              "process.stdout.write(JSON.stringify(out));")
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
    r = subprocess.run(["node", "-e", script], input=json.dumps(dict(op=op, **payload)), capture_output=True,
                       text=True, env=env, check=True)
    return json.loads(r.stdout)


def make_demo():
    d = os.path.join(ROOT, "models", "tiny-sotu")
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: t
         for k, t in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    prompt_ids = tiktoken("encode", {"texts": DEMO_PROMPTS})
    cases = []
    for text, ids in zip(DEMO_PROMPTS, prompt_ids):
        max_length = 40
        out, margin = gpt2_oracle.greedy(w, cfg, ids, max_length - len(ids), eos=cfg["eos_token_id"])
        cases.append({"prompt": text, "prompt_ids": ids, "max_length": max_length, "ids": out,
                      "min_top2_margin": margin})
    texts = tiktoken("decode", {"ids": [[i for i in c["ids"] if i != 50256] for c in cases]})
    for c, t in zip(cases, texts):
        c["text"] = t
        print(f"demo: {c['prompt']!r}: margin {c['min_top2_margin']:.4f} -> {t[:60]!r}")
    # The packaging check (tests/packaging/check.sh) compares a consumer program's output with this.
    assert cases[0]["prompt"] == "The state of the Union" and cases[0]["max_length"] == 40
    with open(os.path.join(OUT, "demo_greedy.txt"), "w", encoding="utf-8") as f:
        f.write(cases[0]["text"])
    # Logits of one prompt, for the tolerance check on a trained model.
    logits = gpt2_oracle.forward(w, cfg, prompt_ids[0])
    with open(os.path.join(OUT, "demo_logits.f32"), "wb") as f:
        f.write(logits.float().numpy().tobytes())
    with open(os.path.join(OUT, "demo_expected.json"), "w") as f:
        json.dump({"cases": cases, "logits": {"ids": prompt_ids[0], "file": "demo_logits.f32",
                                              "shape": list(logits.shape)},
                   "note": "written by tests/reference/make_fixtures.py: ids by tiktoken, greedy by the "
                           "PyTorch float64 oracle"}, f, indent=1, ensure_ascii=False)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    vocab, merges = train_bpe(200)
    for i, (name, over, opt) in enumerate(MODELS):
        make_model(name, dict(over), opt, vocab, merges, seed=1000 + i)
    make_demo()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the embedding fixtures: pooled vectors that the PyTorch oracle (gpt2_oracle.py, float64)
computes for random GPT-2 folders made for them (sizes, dtypes and head counts the other fixtures do
not have: F16 with n_head 3 and an odd n_embd, F32 with n_head 5 and erf GELU, BF16 with n_head 4
and n_inner) and for the demo model, for every pooling, several hidden states, with and without L2
normalisation. Re-runnable; output is deterministic.

Output: tests/fixtures/embeddings/<folder>/ (a model folder) and, for every model, an
embeddings.json listing the cases and embeddings.f32 holding their vectors one after another.

Needs Debian's python3-torch, and for the demo model's texts the npm package tiktoken
(npm install --prefix tests/reference).

Usage: /usr/bin/python3 tests/reference/make_embedding_fixtures.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "embeddings")
sys.path.insert(0, HERE)
import gpt2_oracle  # noqa: E402
import make_fixtures as mf  # noqa: E402

# name, config overrides, stored dtype
MODELS = [
    ("f16-h3-odd", dict(n_embd=51, n_head=3, n_layer=3, n_positions=40), "F16"),
    ("f32-h5-erf", dict(n_embd=60, n_head=5, n_layer=2, n_positions=48, activation_function="gelu",
                        scale_attn_by_inverse_layer_idx=True), "F32"),
    ("bf16-h4-inner", dict(n_embd=88, n_head=4, n_layer=2, n_positions=40, n_inner=150), "BF16"),
]

POOLINGS = ["mean", "weighted_mean", "last", "none"]

DEMO_TEXTS = [
    "Call me Ishmael.",
    "The state of the Union is strong, and the people of the United States are free.",
    "whale",
    "Fellow citizens of the Senate and of the House of Representatives: among the vicissitudes incident to "
    "life no event could have filled me with greater anxieties than that of which the notification was "
    "transmitted by your order, and received on the 14th day of the present month.",
]


def cases_for(w, cfg, inputs, out_dir):
    """Every (input, pooling, hidden state, normalize) case: vectors into embeddings.f32, the list into
    embeddings.json."""
    L = cfg["n_layer"]
    layers = sorted({0, 1, L - 1, L})
    cases, blob = [], []
    offset = 0
    for ids in inputs:
        states = gpt2_oracle.hidden_states(w, cfg, ids)
        for layer in layers:
            for pooling in POOLINGS:
                for normalize in (False, True):
                    if normalize and layer not in (L, 1):
                        continue
                    v = gpt2_oracle.pool(states[layer], pooling)
                    if normalize:
                        v = torch.nn.functional.normalize(v, dim=-1)
                    flat = v.reshape(-1)
                    blob.append(flat.float().numpy().tobytes())
                    cases.append({"ids": ids, "pooling": pooling, "layer": layer, "normalize": normalize,
                                  "offset": offset, "count": int(flat.numel())})
                    offset += int(flat.numel())
    with open(os.path.join(out_dir, "embeddings.f32"), "wb") as f:
        f.write(b"".join(blob))
    return cases


def write_cases(out_dir, cases, extra):
    doc = {"cases": cases,
           "note": "written by tests/reference/make_embedding_fixtures.py (PyTorch float64 oracle)"}
    doc.update(extra)
    with open(os.path.join(out_dir, "embeddings.json"), "w") as f:
        json.dump(doc, f, indent=0)


def make_random(name, over, dtype, vocab, merges, seed):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    V = len(vocab)
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V,
           "n_ctx": over["n_positions"], "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
           "n_inner": None, "bos_token_id": V - 1, "eos_token_id": V - 1}
    cfg.update(over)
    w = mf.random_weights(cfg, gen, untied=False)
    mf.write_safetensors(os.path.join(d, "model.safetensors"), [(k, t, dtype) for k, t in w.items()],
                         {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    mf.write_tokenizer(d, vocab, merges, as_tokenizer_json=False)
    wr = {k: mf.rounded(t, dtype) for k, t in w.items()}
    P = cfg["n_positions"]
    inputs = [[int(i) for i in torch.randint(0, V, (n,), generator=gen)] for n in (1, 2, 9, 17, P)]
    cases = cases_for(wr, cfg, inputs, d)
    write_cases(d, cases, {})
    print(f"{name}: n_embd {cfg['n_embd']}, n_head {cfg['n_head']}, {dtype}, {len(cases)} cases")


def make_demo():
    d = os.path.join(ROOT, "models", "tiny-sotu")
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: t
         for k, t in mf.read_safetensors(os.path.join(d, "model.safetensors")).items()}
    inputs = mf.tiktoken("encode", {"texts": DEMO_TEXTS})
    out_dir = os.path.join(OUT, "tiny-sotu")
    os.makedirs(out_dir, exist_ok=True)
    cases = cases_for(w, cfg, inputs, out_dir)
    write_cases(out_dir, cases, {"texts": DEMO_TEXTS, "inputs": inputs, "model": "models/tiny-sotu"})
    print(f"tiny-sotu: {len(cases)} cases, texts of {[len(i) for i in inputs]} tokens")


def main():
    torch.manual_seed(0)
    vocab, merges = mf.train_bpe(200)
    for i, (name, over, dtype) in enumerate(MODELS):
        make_random(name, dict(over), dtype, vocab, merges, seed=2900 + i)
    make_demo()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the oracle's view inside the model, for tests/test_explain.cpp: HF-style attentions and
hidden states, the logit lens, direct logit attribution, attention rollout and occlusion saliency,
all computed here in PyTorch float64, independently of tinyllm.

Semantics follow Hugging Face's modeling_gpt2.py: `attentions[l]` is the softmax of layer l,
[n_head, T, T]; `hidden_states` has n_layer + 1 entries, the embeddings, then the residual stream
entering each later block, and last the output of the final block after ln_f.

Folders: the random fixtures of make_fixtures.py (n_head 4, 5 and 3; F32, F16, BF16; an untied
head; gelu and scale_attn_by_inverse_layer_idx), one more written here with a sequence longer than
the attention kernel's query block (96), and the demo model on a text it generated.

Usage: /usr/bin/python3 tests/reference/make_explain_fixtures.py   (deterministic, re-runnable)
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, HERE)
import gpt2_oracle  # noqa: E402
import make_fixtures  # noqa: E402

TOP_K = 5


def load(folder):
    """(weights as float64 with HF names, config) of a folder, as the loader sees them."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = {}
    names = [f for f in os.listdir(folder) if f.endswith(".safetensors")]
    for name in sorted(names):
        for k, t in make_fixtures.read_safetensors(os.path.join(folder, name)).items():
            w[k[len("transformer."):] if k.startswith("transformer.") else k] = t
    return w, cfg


def inspect(w, cfg, ids):
    """One pass recording what the explanations need: HF's attentions and hidden states, the final
    residual (before ln_f) and, per layer, c_proj's input (merged heads), the attention output and
    the MLP output."""
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = gpt2_oracle.gelu_erf if cfg.get("activation_function", "gelu_new") == "gelu" else gpt2_oracle.gelu_new
    T = len(ids)
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], eps)
    x = w["wte.weight"][torch.tensor(ids)] + w["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    rec = {"attentions": [], "hidden_states": [], "merged": [], "attn_out": [], "mlp_out": []}
    for l in range(L):
        p = f"h.{l}."
        rec["hidden_states"].append(x)
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in qkv.split(C, dim=-1))
        att = q @ k.transpose(-1, -2)
        if cfg.get("scale_attn_weights", True):
            att = att / math.sqrt(hd)
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            att = att / float(l + 1)
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # [H, T, T]
        rec["attentions"].append(att)
        merged = (att @ v).transpose(0, 1).reshape(T, C)
        rec["merged"].append(merged)
        y = merged @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        rec["attn_out"].append(y)
        x = x + y
        m = act(ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]) @ w[p + "mlp.c_proj.weight"] \
            + w[p + "mlp.c_proj.bias"]
        rec["mlp_out"].append(m)
        x = x + m
    rec["final_residual"] = x
    rec["hidden_states"].append(ln(x, "ln_f"))
    head = w.get("lm_head.weight", w["wte.weight"])
    rec["logits"] = rec["hidden_states"][-1] @ head.T
    return rec


def logit_lens(w, cfg, rec, target):
    C, L = cfg["n_embd"], cfg["n_layer"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    head = w.get("lm_head.weight", w["wte.weight"])
    rows = []
    for l in range(L + 1):
        h = rec["hidden_states"][l]
        normed = h if l == L else torch.nn.functional.layer_norm(h, (C,), w["ln_f.weight"], w["ln_f.bias"], eps)
        logp = (normed @ head.T).log_softmax(dim=-1)  # [T, V]
        top = torch.topk(logp, TOP_K, dim=-1)
        margins = (top.values[:, :-1] - top.values[:, 1:]).min(dim=-1).values
        rows.append({"ids": top.indices.tolist(), "logprobs": top.values.tolist(),
                     "min_margin": margins.tolist(), "target_logprobs": logp[:, target].tolist()})
    return rows


def attribution(w, cfg, ids, rec, target, pos):
    """Direct logit attribution by the definition: each part's (p - mean p) . (gamma * u) / sigma."""
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    u = w.get("lm_head.weight", w["wte.weight"])[target]
    r = rec["final_residual"][pos]
    sigma = math.sqrt(float(((r - r.mean()) ** 2).mean()) + eps)
    gu = w["ln_f.weight"] * u
    contrib = lambda part: float((part - part.mean()) @ gu) / sigma
    out = {"target": target, "position": pos, "sigma": sigma,
           "logit": float(rec["logits"][pos, target]),
           "logprob": float(rec["logits"][pos].log_softmax(-1)[target]),
           "token_embedding": contrib(w["wte.weight"][ids[pos]]),
           "position_embedding": contrib(w["wpe.weight"][pos]),
           "ln_f_bias": float(w["ln_f.bias"] @ u), "attn": [], "heads": [], "attn_bias": [], "mlp": []}
    for l in range(L):
        p = f"h.{l}."
        W = w[p + "attn.c_proj.weight"]
        m = rec["merged"][l][pos]
        out["heads"].append([contrib(m[h * hd:(h + 1) * hd] @ W[h * hd:(h + 1) * hd]) for h in range(H)])
        out["attn_bias"].append(contrib(w[p + "attn.c_proj.bias"]))
        out["attn"].append(contrib(rec["attn_out"][l][pos]))
        out["mlp"].append(contrib(rec["mlp_out"][l][pos]))
    total = out["token_embedding"] + out["position_embedding"] + out["ln_f_bias"] + sum(out["attn"]) + sum(out["mlp"])
    assert abs(total - out["logit"]) < 1e-9 * max(1.0, abs(out["logit"])), (total, out["logit"])
    return out


def rollout(rec):
    out, r = [], None
    for att in rec["attentions"]:
        T = att.shape[-1]
        a = att.mean(dim=0) + torch.eye(T, dtype=att.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        r = a if r is None else a @ r
        out.append(r)
    return torch.stack(out)  # [L, T, T]


def occlusion(w, cfg, ids, target, replacement):
    """log p(target | ids) - log p(target | ids with token i removed or replaced), by full passes."""
    def logprob(seq):
        if not seq:
            seq = [cfg["bos_token_id"]]
        return float(gpt2_oracle.forward(w, cfg, seq)[-1].log_softmax(-1)[target])
    base = logprob(ids)
    removed = [base - logprob(ids[:i] + ids[i + 1:]) for i in range(len(ids))]
    replaced = [base - logprob(ids[:i] + [replacement] + ids[i + 1:]) for i in range(len(ids))]
    return {"logprob": base, "replacement": replacement, "removed": removed, "replaced": replaced}


def write(folder, name, w, cfg, ids, target, occlusion_tokens):
    rec = inspect(w, cfg, ids)
    check = gpt2_oracle.forward(w, cfg, ids)
    assert torch.allclose(check, rec["logits"], rtol=0, atol=1e-9)
    T, pos = len(ids), len(ids) - 1
    torch.stack(rec["attentions"]).float().numpy().tofile(os.path.join(folder, "explain_attentions.f32"))
    torch.stack(rec["hidden_states"]).float().numpy().tofile(os.path.join(folder, "explain_hidden_states.f32"))
    rollout(rec).float().numpy().tofile(os.path.join(folder, "explain_rollout.f32"))
    occ_ids = ids[:occlusion_tokens]
    expected = {
        "ids": ids, "target": target, "top_k": TOP_K,
        "attentions": {"file": "explain_attentions.f32", "shape": [cfg["n_layer"], cfg["n_head"], T, T]},
        "hidden_states": {"file": "explain_hidden_states.f32", "shape": [cfg["n_layer"] + 1, T, cfg["n_embd"]]},
        "rollout": {"file": "explain_rollout.f32", "shape": [cfg["n_layer"], T, T]},
        "logit_lens": logit_lens(w, cfg, rec, target),
        "attribution": attribution(w, cfg, ids, rec, target, pos),
        "occlusion": dict(ids=occ_ids, **occlusion(w, cfg, occ_ids, target, replacement=cfg["eos_token_id"])),
        "note": "written by tests/reference/make_explain_fixtures.py (PyTorch float64 oracle, HF semantics)",
    }
    with open(os.path.join(folder, "explain_expected.json"), "w") as f:
        json.dump(expected, f, indent=None, separators=(",", ":"))
    print(f"{name}: T {T}, target {target}, logit {expected['attribution']['logit']:.4f}")


def make_long_fixture(d):
    """A random F32 GPT-2 with a context above the attention kernel's query block."""
    os.makedirs(d, exist_ok=True)
    vocab, merges = make_fixtures.train_bpe(200)
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": len(vocab), "n_positions": 128,
           "n_ctx": 128, "n_embd": 24, "n_head": 3, "n_layer": 2, "layer_norm_epsilon": 1e-5,
           "activation_function": "gelu_new", "n_inner": None, "bos_token_id": len(vocab) - 1,
           "eos_token_id": len(vocab) - 1}
    gen = torch.Generator().manual_seed(2800)
    w = make_fixtures.random_weights(cfg, gen, untied=False)
    make_fixtures.write_safetensors(os.path.join(d, "model.safetensors"), [(k, t, "F32") for k, t in w.items()],
                                    {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    make_fixtures.write_tokenizer(d, vocab, merges, False)
    ids = [int(i) for i in torch.randint(0, len(vocab), (100,), generator=gen)]
    return ids


def main():
    for name in ["f32-hub", "f16-prefix-odd", "bf16-untied-tokjson", "f32-sharded-inner"]:
        folder = os.path.join(FIXTURES, name)
        w, cfg = load(folder)
        ids = json.load(open(os.path.join(folder, "expected.json")))["ids"]
        write(folder, name, w, cfg, ids, target=ids[3], occlusion_tokens=12)
    long_dir = os.path.join(FIXTURES, "f32-explain-long")
    ids = make_long_fixture(long_dir)
    w, cfg = load(long_dir)
    write(long_dir, "f32-explain-long", w, cfg, ids, target=ids[7], occlusion_tokens=10)
    # The demo model on the text it writes after "The state of the Union" (make_fixtures.py).
    demo = os.path.join(FIXTURES, "demo_explain")
    os.makedirs(demo, exist_ok=True)
    w, cfg = load(os.path.join(ROOT, "models", "tiny-sotu"))
    case = json.load(open(os.path.join(FIXTURES, "demo_expected.json")))["cases"][0]
    ids = case["ids"][:32]
    nxt = int(gpt2_oracle.forward(w, cfg, ids)[-1].argmax())
    write(demo, "demo", w, cfg, ids, target=nxt, occlusion_tokens=len(ids))


if __name__ == "__main__":
    main()

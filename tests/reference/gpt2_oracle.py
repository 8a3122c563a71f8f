"""GPT-2 as Hugging Face computes it (DESIGN.md section 2), in plain PyTorch, in float64.
Independent of tinyllm: the oracle that the fixtures' expected logits and greedy ids come from."""
import math

import torch


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def hidden_states(w, cfg, ids):
    """Hugging Face's output_hidden_states for token ids (list of int): n_layer + 1 tensors [T, n_embd],
    the embeddings, the residual stream after each block but the last, and ln_f of the last block's output.
    w: name -> float64 tensor (HF names, no prefix)."""
    C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = gelu_erf if cfg.get("activation_function", "gelu_new") == "gelu" else gelu_new
    T = len(ids)
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], eps)
    x = w["wte.weight"][torch.tensor(ids)] + w["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    states = []
    for l in range(L):
        states.append(x)
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in qkv.split(C, dim=-1))  # [H, T, hd]
        att = q @ k.transpose(-1, -2)
        if cfg.get("scale_attn_weights", True):
            att = att / math.sqrt(hd)
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            att = att / float(l + 1)
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = act(ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    states.append(ln(x, "ln_f"))
    return states


def forward(w, cfg, ids):
    """Logits [T, vocab] for token ids (list of int). w: name -> float64 tensor (HF names, no prefix)."""
    head = w.get("lm_head.weight", w["wte.weight"])
    return hidden_states(w, cfg, ids)[-1] @ head.T


def pool(h, pooling):
    """A text's hidden states h [T, C] pooled: mean, weighted_mean (SGPT: token t of T weighted
    t / (1 + ... + T)), last, or none (h itself)."""
    T = h.shape[0]
    if pooling == "mean":
        return h.mean(dim=0)
    if pooling == "weighted_mean":
        weights = torch.arange(1, T + 1, dtype=h.dtype)
        return (weights[:, None] * h).sum(dim=0) / weights.sum()
    if pooling == "last":
        return h[-1]
    if pooling == "none":
        return h
    raise ValueError(pooling)


def greedy(w, cfg, ids, max_new_tokens, eos=None):
    """HF greedy search: argmax (first index on ties), stop after eos. Returns (ids, min top-2 margin)."""
    ids = list(ids)
    margin = float("inf")
    for _ in range(max_new_tokens):
        if len(ids) >= cfg["n_positions"]:
            break
        last = forward(w, cfg, ids)[-1]
        top = torch.topk(last, 2).values
        margin = min(margin, float(top[0] - top[1]))
        nxt = int(torch.argmax(last))
        ids.append(nxt)
        if eos is not None and nxt == eos:
            break
    return ids, margin

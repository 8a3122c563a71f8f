#!/usr/bin/env python3
"""Writes tests/fixtures/generation_expected.json: the references that tests/test_generation.cpp
checks tinyllm's generation against.

- Hugging Face's logits processors and warpers (repetition_penalty, no_repeat_ngram_size,
  bad_words_ids, min_length, min_new_tokens, temperature, top_k, top_p, min_p, typical_p), written
  here from HF's documented semantics in float32 torch, applied to random rows.
- Greedy search with processors, and the log-probabilities of each token with the top 5 alternatives,
  over the PyTorch float64 oracle's logits (gpt2_oracle.py) of the demo model.
- Beam search as HF's GenerationMixin._beam_search does it (transformers >= 4.50), written here
  over the oracle's logits: num_beams, length_penalty, early_stopping True/False/"never",
  num_return_sequences, several eos ids, processors on the log-probabilities.

Greedy and beam cases record the smallest gap between scores whose order decides the result; the
script refuses a case whose gap is below MIN_GAP, so float32 rounding in tinyllm cannot flip it.

Usage: /usr/bin/python3 tests/reference/make_generation_fixtures.py   (Debian's python3-torch)
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "generation_expected.json")
sys.path.insert(0, HERE)
import gpt2_oracle  # noqa: E402
from make_fixtures import read_safetensors  # noqa: E402

NEG_INF = float("-inf")
MIN_GAP = 2e-4

# --- HF's processors, from their documented semantics (float32 rows, in place on a copy) ----------


def repetition_penalty(s, ids, penalty):
    s = s.clone()
    idx = torch.tensor(sorted(set(ids)), dtype=torch.long)
    g = s[idx]
    s[idx] = torch.where(g < 0, g * penalty, g / penalty)
    return s


def no_repeat_ngram(s, ids, n):
    s = s.clone()
    cur = len(ids)
    if cur + 1 < n:
        return s
    grams = {}
    for i in range(cur - n + 1):
        grams.setdefault(tuple(ids[i:i + n - 1]), []).append(ids[i + n - 1])
    for t in grams.get(tuple(ids[cur - n + 1:]), []):
        s[t] = NEG_INF
    return s


def bad_words(s, ids, words, eos):
    s = s.clone()
    for w in words:
        if len(w) == 1 and w[0] in eos:  # HF drops single-token bad words that are eos ids
            continue
        prefix = w[:-1]
        if len(prefix) > len(ids):
            continue
        if ids[len(ids) - len(prefix):] == prefix:
            s[w[-1]] = NEG_INF
    return s


def min_length(s, ids, n, eos):
    s = s.clone()
    if len(ids) < n:
        s[eos] = NEG_INF
    return s


def min_new_tokens(s, ids, prompt_length, n, eos):
    s = s.clone()
    if len(ids) - prompt_length < n:
        s[eos] = NEG_INF
    return s


def temperature(s, t):
    return s / t


def top_k(s, k, keep):
    k = min(max(k, keep), s.numel())
    kth = torch.topk(s, k).values[-1]
    return s.masked_fill(s < kth, NEG_INF)


def top_p(s, p, keep):
    srt, idx = torch.sort(s, descending=False)
    cum = srt.softmax(-1).cumsum(-1)
    remove = cum <= (1 - p)
    remove[-keep:] = False
    mask = torch.zeros_like(remove)
    mask[idx] = remove
    return s.masked_fill(mask, NEG_INF)


def min_p(s, mp, keep):
    probs = s.softmax(-1)
    remove = probs < mp * probs.max()
    order = torch.argsort(s, descending=True)
    remove[order[:keep]] = False
    return s.masked_fill(remove, NEG_INF)


def typical_p(s, mass, keep):
    logp = torch.log_softmax(s, -1)
    p = logp.exp()
    ent = -(logp * p).nansum()
    shifted = (-logp - ent).abs()
    srt, idx = torch.sort(shifted, descending=False)
    cum = s[idx].softmax(-1).cumsum(-1)
    last = min(int((cum < mass).sum()), s.numel() - 1)
    remove = srt > srt[last]
    remove[:keep] = False
    mask = torch.zeros_like(remove)
    mask[idx] = remove
    return s.masked_fill(mask, NEG_INF)


def process(s, ids, prompt_length, gc, eos):
    """HF's _get_logits_processor order: processors, then (do_sample) warpers."""
    if gc.get("repetition_penalty", 1.0) != 1.0:
        s = repetition_penalty(s, ids, gc["repetition_penalty"])
    if gc.get("no_repeat_ngram_size", 0) > 0:
        s = no_repeat_ngram(s, ids, gc["no_repeat_ngram_size"])
    if gc.get("bad_words_ids"):
        s = bad_words(s, ids, gc["bad_words_ids"], eos)
    if gc.get("min_length", 0) > 0:
        s = min_length(s, ids, gc["min_length"], eos)
    if gc.get("min_new_tokens", 0) > 0:
        s = min_new_tokens(s, ids, prompt_length, gc["min_new_tokens"], eos)
    return s


def warp(s, gc, keep):
    if gc.get("temperature", 1.0) != 1.0:
        s = temperature(s, gc["temperature"])
    if gc.get("top_k", 50) != 0:
        s = top_k(s, gc.get("top_k", 50), keep)
    if gc.get("top_p", 1.0) < 1.0:
        s = top_p(s, gc["top_p"], keep)
    if gc.get("min_p", 0.0) > 0.0:
        s = min_p(s, gc["min_p"], keep)
    if gc.get("typical_p", 1.0) < 1.0:
        s = typical_p(s, gc["typical_p"], keep)
    return s


def as_json_row(s):
    return [None if math.isinf(x) else x for x in s.tolist()]


# --- processor cases on random rows ---------------------------------------------------------------


def processor_cases():
    gen = torch.Generator().manual_seed(4)
    V = 32
    cases = []

    def add(name, gc, do_sample, keep=1, logits=None, ids=None, prompt_length=None, eos=(0, 5)):
        if logits is None:
            logits = (torch.randn(V, generator=gen) * 3).float()
        if ids is None:
            ids = [int(i) for i in torch.randint(0, V, (12,), generator=gen)]
        pl = prompt_length if prompt_length is not None else 6
        s = process(logits.clone(), ids, pl, gc, list(eos))
        if do_sample:
            s = warp(s, gc, keep)
        cases.append({"name": name, "config": gc, "do_sample": do_sample, "min_keep": keep, "ids": ids,
                      "prompt_length": pl, "eos": list(eos), "logits": logits.tolist(), "expected": as_json_row(s)})

    add("repetition_penalty 1.3", {"repetition_penalty": 1.3}, False)
    add("repetition_penalty 0.6 (encourages)", {"repetition_penalty": 0.6}, False)
    add("no_repeat_ngram_size 1", {"no_repeat_ngram_size": 1}, False)
    add("no_repeat_ngram_size 2", {"no_repeat_ngram_size": 2}, False, ids=[3, 7, 9, 3, 7, 1, 3, 7, 4, 9, 3])
    add("no_repeat_ngram_size 3", {"no_repeat_ngram_size": 3}, False, ids=[3, 7, 9, 3, 7, 1, 3, 7, 4, 9, 3, 7])
    add("no_repeat_ngram_size 4, too short", {"no_repeat_ngram_size": 4}, False, ids=[3, 7])
    add("bad_words_ids", {"bad_words_ids": [[9], [0], [7, 11], [4, 2, 13], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]},
        False, ids=[1, 4, 2, 8, 4, 2])
    add("bad_words_ids, prefix at the end", {"bad_words_ids": [[8, 4, 2, 20], [2, 21]]}, False, ids=[1, 4, 2, 8, 4, 2])
    add("min_length, short", {"min_length": 20}, False)
    add("min_length, long enough", {"min_length": 12}, False)
    add("min_new_tokens, short", {"min_new_tokens": 7}, False, prompt_length=6)
    add("min_new_tokens, enough", {"min_new_tokens": 6}, False, prompt_length=6)
    add("temperature 0.7", {"temperature": 0.7, "top_k": 0}, True)
    add("top_k 5", {"top_k": 5}, True)
    ties = torch.tensor([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.5, -1.0] * 4).float()
    add("top_k 3 with ties at the k-th", {"top_k": 3}, True, logits=ties)
    add("top_k 1", {"top_k": 1}, True)
    add("top_p 0.8", {"top_k": 0, "top_p": 0.8}, True)
    add("top_p 0.3", {"top_k": 0, "top_p": 0.3}, True)
    add("top_p 0.01, min_keep 2", {"top_k": 0, "top_p": 0.01}, True, keep=2)
    add("min_p 0.1", {"top_k": 0, "min_p": 0.1}, True)
    add("min_p 0.9, min_keep 3", {"top_k": 0, "min_p": 0.9}, True, keep=3)
    add("typical_p 0.5", {"top_k": 0, "typical_p": 0.5}, True)
    add("typical_p 0.9", {"top_k": 0, "typical_p": 0.9}, True)
    add("typical_p 0.2, min_keep 2", {"top_k": 0, "typical_p": 0.2}, True, keep=2)
    add("everything, in HF's order", {"repetition_penalty": 1.2, "no_repeat_ngram_size": 2, "bad_words_ids": [[3], [1, 6]],
                                      "min_new_tokens": 9, "temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05,
                                      "typical_p": 0.95}, True, ids=[1, 6, 3, 1, 4, 4, 2, 1, 6, 2, 1])
    add("warpers after top_k see -inf", {"temperature": 1.5, "top_k": 6, "top_p": 0.7, "typical_p": 0.6}, True)
    return cases


# --- greedy and beam search over the demo model ------------------------------------------------------


class Model:
    def __init__(self, d):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.w = {k[len("transformer."):] if k.startswith("transformer.") else k: t
                  for k, t in read_safetensors(os.path.join(d, "model.safetensors")).items()}
        self.cache = {}

    def logits(self, ids):
        key = tuple(ids)
        if key not in self.cache:
            self.cache[key] = gpt2_oracle.forward(self.w, self.cfg, list(ids))[-1]
        return self.cache[key]


def greedy(model, prompt, gc, eos, max_new, top_n=5):
    """HF greedy search with processors; per token: log-prob of the processed scores and top_n."""
    ids = list(prompt)
    logprobs, tops, gap = [], [], float("inf")
    reason = "length"
    for _ in range(max_new):
        s = process(model.logits(ids).clone(), ids, len(prompt), gc, eos)
        srt = torch.sort(s[~torch.isinf(s)], descending=True).values
        gap = min(gap, float(srt[0] - srt[1]))
        t = int(torch.argmax(s))
        lp = torch.log_softmax(s, -1)
        vals, idx = torch.topk(lp, top_n)
        logprobs.append(float(lp[t]))
        tops.append([[int(i), float(v)] for v, i in zip(vals, idx)])
        ids.append(t)
        if t in eos:
            reason = "eos"
            break
    return ids, logprobs, tops, gap, reason


def beam_search(model, prompt, gc, eos, max_new):
    """HF's beam search (GenerationMixin._beam_search, transformers >= 4.50), one prompt.
    Scores are float32 as in HF; logits come from the float64 oracle."""
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)
    nb = gc["num_beams"]
    lp_pow = gc.get("length_penalty", 1.0)
    es = gc.get("early_stopping", False)
    R = gc.get("num_return_sequences", 1)
    P = len(prompt)
    max_length = P + max_new
    keep = max(2, 1 + len(eos)) * nb
    running = [list(prompt) for _ in range(nb)]
    running_lp = [[] for _ in range(nb)]
    running_scores = f32([0.0] + [-1e9] * (nb - 1))
    finished = []  # (score float32 tensor, ids, logprobs)
    improvable = True
    cur_len = P
    gap = float("inf")
    while True:
        rows = []
        for b in range(nb):
            lp = torch.log_softmax(model.logits(running[b]).float(), -1)
            rows.append(process(lp, running[b], P, gc, eos))
        rows = torch.stack(rows)  # [nb, V] processed log-probs
        V = rows.shape[1]
        acc = (rows + running_scores[:, None]).reshape(-1)
        top = torch.topk(acc, keep + 1)
        vals = top.values.tolist()
        gap = min(gap, min(vals[i] - vals[i + 1] for i in range(keep) if vals[i] > -1e8))
        cand = [(top.values[i], int(top.indices[i]) // V, int(top.indices[i]) % V) for i in range(keep)]
        ends = [t in eos or cur_len + 1 >= max_length for _, _, t in cand]
        run_scores = [c[0] + (f32(-1e9) if e else f32(0.0)) for c, e in zip(cand, ends)]
        order = sorted(range(keep), key=lambda i: -float(run_scores[i]))  # stable: ties keep candidate order
        # finished hypotheses: ended candidates ranked in the first nb
        full = len(finished) == nb
        denom = (cur_len + 1 - P) ** lp_pow
        for i in range(nb):
            score, b, t = cand[i]
            if not ends[i] or (full and es is True) or not improvable:
                continue
            lp_row = torch.log_softmax(rows[b], -1)
            finished.append((score / denom, running[b] + [t], running_lp[b] + [float(lp_row[t])]))
        finished.sort(key=lambda h: -float(h[0]))
        finished = finished[:nb]
        for a, c in zip(finished, finished[1:]):
            if float(a[0]) != float(c[0]):
                gap = min(gap, float(a[0]) - float(c[0]))
        new_running, new_lp = [], []
        for j in range(nb):
            score, b, t = cand[order[j]]
            lp_row = torch.log_softmax(rows[b], -1)
            new_running.append(running[b] + [t])
            new_lp.append(running_lp[b] + [float(lp_row[t])])
        running_scores = torch.stack([run_scores[order[j]] for j in range(nb)])
        running, running_lp = new_running, new_lp
        cur_len += 1
        all_finished = len(finished) == nb
        best_len = (max_length - P) if (es == "never" and lp_pow > 0.0) else (cur_len - P)
        best_possible = running_scores[0] / (best_len ** lp_pow)
        improvable = improvable and (not all_finished or bool(best_possible > finished[-1][0]))
        if not improvable or (all_finished and es is True) or all(ends):
            break
    out = []
    for score, ids, lps in finished[:R]:
        out.append({"ids": ids, "score": float(score), "logprobs": lps,
                    "reason": "eos" if ids[-1] in eos else "length"})
    return out, gap, cur_len - P


def id_of(model_dir, text):
    vocab = json.load(open(os.path.join(model_dir, "vocab.json"), encoding="utf-8"))
    return vocab[text.replace(" ", "\u0120")]


def main():
    demo_dir = os.path.join(ROOT, "models", "tiny-sotu")
    demo = Model(demo_dir)
    dot, comma, the = id_of(demo_dir, "."), id_of(demo_dir, ","), id_of(demo_dir, " the")
    eos = [demo.cfg["eos_token_id"]]
    # prompt ids as tiktoken gives them (make_fixtures.py wrote them)
    demo_cases = json.load(open(os.path.join(ROOT, "tests", "fixtures", "demo_expected.json")))["cases"]
    prompt_of = {c["prompt"]: c["prompt_ids"] for c in demo_cases}
    prompt_a = prompt_of["The state of the Union"]
    prompt_b = prompt_of["Call me Ishmael."]
    prompt_c = prompt_of["My fellow citizens, we"]

    greedy_cases = []
    for name, prompt, gc, ceos, n in [
        ("no processors", prompt_a, {}, eos, 20),
        ("repetition_penalty 1.5", prompt_a, {"repetition_penalty": 1.5}, eos, 20),
        ("no_repeat_ngram_size 2", prompt_b, {"no_repeat_ngram_size": 2}, eos, 20),
        ("bad_words_ids and min_new_tokens with '.' as eos", prompt_c,
         {"bad_words_ids": [[the], [comma, 356]], "min_new_tokens": 8}, [dot], 20),
        ("min_length 16 with ',' as eos", prompt_c, {"min_length": 16}, [comma], 20),
    ]:
        ids, lps, tops, gap, reason = greedy(demo, prompt, gc, ceos, n)
        assert gap > MIN_GAP, (name, gap)
        greedy_cases.append({"name": name, "prompt": prompt, "config": gc, "eos": ceos, "max_new_tokens": n,
                             "ids": ids, "logprobs": lps, "top_logprobs": tops, "reason": reason, "min_gap": gap})
        print(f"greedy {name}: {len(ids) - len(prompt)} new, {reason}, gap {gap:.5f}")

    beam_cases = []
    for name, prompt, gc, ceos, n in [
        ("3 beams, defaults", prompt_a, {"num_beams": 3, "num_return_sequences": 3}, eos, 10),
        ("4 beams, '.' as eos, early_stopping False", prompt_b,
         {"num_beams": 4, "num_return_sequences": 2}, [dot], 16),
        ("3 beams, ',' as eos, early_stopping False", prompt_c,
         {"num_beams": 3, "num_return_sequences": 3}, [comma], 16),
        ("3 beams, ',' and the as eos, early_stopping True", prompt_a,
         {"num_beams": 3, "num_return_sequences": 3, "early_stopping": True}, [comma, the], 16),
        ("4 beams, '.' as eos, early_stopping True, length_penalty 2", prompt_b,
         {"num_beams": 4, "num_return_sequences": 4, "early_stopping": True, "length_penalty": 2.0}, [dot], 16),
        ("3 beams, ',' and '.' as eos, early_stopping never, length_penalty 0.5", prompt_c,
         {"num_beams": 3, "num_return_sequences": 2, "early_stopping": "never", "length_penalty": 0.5}, [comma, dot], 14),
        ("2 beams, '.' as eos, length_penalty -1", prompt_a,
         {"num_beams": 2, "num_return_sequences": 2, "length_penalty": -1.0}, [dot], 14),
        ("4 beams with no_repeat_ngram_size 2 and repetition_penalty 1.3", prompt_a,
         {"num_beams": 4, "num_return_sequences": 2, "no_repeat_ngram_size": 2, "repetition_penalty": 1.3}, eos, 12),
        ("3 beams, ',' as eos, min_new_tokens 4, early_stopping never, length_penalty 0", prompt_c,
         {"num_beams": 3, "num_return_sequences": 3, "min_new_tokens": 4, "early_stopping": "never", "length_penalty": 0.0},
         [comma], 12),
    ]:
        results, gap, steps = beam_search(demo, prompt, gc, ceos, n)
        assert gap > MIN_GAP, (name, gap)
        beam_cases.append({"name": name, "prompt": prompt, "config": gc, "eos": ceos, "max_new_tokens": n,
                           "results": results, "steps": steps, "min_gap": gap})
        print(f"beams {name}: {steps} steps, gap {gap:.5f}, " +
              ", ".join(f"{len(r['ids']) - len(prompt)} new {r['reason']} {r['score']:.4f}" for r in results))

    with open(OUT, "w") as f:
        json.dump({"note": "written by tests/reference/make_generation_fixtures.py (HF semantics, PyTorch oracle)",
                   "processors": processor_cases(), "greedy": greedy_cases, "beam": beam_cases}, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()

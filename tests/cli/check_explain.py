#!/usr/bin/env python3
"""`tinyllm explain` as a person sees it: the page it writes for the demo model, opened in headless
Chromium. Fails on any JavaScript error (the browser's console log and the page's own #status),
checks the rendered DOM for the expected elements and numbers (against the --json data), checks
the JSON's bertviz layout, the thinned page of a long sequence, the errors for bad input, and
saves a screenshot (explain.png in OUT_DIR).

Usage: check_explain.py TINYLLM_BINARY MODEL_DIR OUT_DIR
Exits 77 (ctest: skipped) when no Chromium is installed.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

tool, model, out_dir = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="tinyllm-explain-")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def browser():
    for name in [os.environ.get("TINYLLM_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]:
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


CHROMIUM = browser()
if not CHROMIUM:
    print("SKIP: no Chromium found (apt-get install chromium, or set TINYLLM_CHROMIUM)")
    sys.exit(77)


def chromium(url, *extra):
    """Runs headless Chromium on url; returns (stdout, stderr)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
           *extra, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    return r.stdout, r.stderr


def js_errors(log):
    return [line for line in log.splitlines() if "Uncaught" in line or ("CONSOLE" in line and "ERROR" in line.upper()
                                                                       and "favicon" not in line)]


def run_tool(*args):
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=600)


# The harness itself: a page with an error must be caught, by the log and by the status element.
probe = os.path.join(tmp, "probe.html")
with open(probe, "w") as f:
    f.write('<div id="status" data-status="loading">loading</div><script>window.onerror = (m) => {'
            'document.getElementById("status").dataset.status = "error";}; null.f();</script>')
dom, log = chromium("file://" + probe, "--dump-dom")
check(js_errors(log), "the harness did not see the probe page's JavaScript error in the browser log")
check('data-status="error"' in dom, "the probe page's onerror did not mark #status")

# The demo page: prompt, a target, a continuation.
page, data_file = os.path.join(tmp, "page.html"), os.path.join(tmp, "data.json")
prompt = "The state of the Union is strong, and the people"
r = run_tool("explain", "-m", model, "-p", prompt, "--target", " the", "-n", "6", "-o", page, "--json", data_file)
check(r.returncode == 0, "explain failed: " + r.stderr)
data = json.load(open(data_file))
T, P = len(data["tokens"]), data["prompt_length"]
n_layer, n_head = len(data["attention"]), len(data["attention"][0][0])
check(T == P + 6, f"tokens: {T}, prompt {P} + 6 new")
check(data["target"]["token"] == " the", "target token")

# bertviz's layout: attention[layer][batch 1][head][query][key], rows summing to 1, causal
for l, layer in enumerate(data["attention"]):
    check(len(layer) == 1 and len(layer[0]) == n_head, f"attention[{l}] is [1][n_head]")
    for h, m in enumerate(layer[0]):
        check(len(m) == T and all(len(row) == T for row in m), f"attention[{l}][0][{h}] is T x T")
        for q, row in enumerate(m):
            check(abs(sum(row) - 1) < 1e-4 and all(v == 0 for v in row[q + 1:]), f"attention[{l}][0][{h}] row {q}")
a = data["attribution"]
parts = a["token_embedding"] + a["position_embedding"] + a["ln_f_bias"] + sum(a["attn"]) + sum(a["mlp"])
check(abs(parts - a["logit"]) < 1e-4 * max(1, abs(a["logit"])), f"attribution parts {parts} vs logit {a['logit']}")
check(len(data["occlusion"]["saliency"]) == P, "occlusion per prompt token")

dom, log = chromium("file://" + page + "#layer=1&head=2&token=3&view=lines", "--dump-dom")
with open(os.path.join(out_dir, "explain_dom.html"), "w") as f:
    f.write(dom)
check(not js_errors(log), "JavaScript errors: " + "\n".join(js_errors(log)))
check('id="status" data-status="ok"' in dom, "the page did not report ok: " +
      (re.search(r'id="status"[^>]*>[^<]*', dom) or [""])[0])
thumbs = dom.count('class="thumb')
check(thumbs == n_layer * n_head, f"model view: {thumbs} thumbnails")
check(dom.count('class="lens-cell') == (n_layer + 1) * T, "logit lens: (n_layer + 1) x T cells")
check(dom.count('class="tok occ"') == P, "occlusion: one coloured token per prompt token")
check(dom.count('class="cont-row"') == 6, "continuation: a row per new token")
check(dom.count('class="dla-bar"') == 2 * n_layer + 3, "attribution: a bar per part")
check(dom.count('class="mono dla-head"') == n_layer * n_head, "attribution: a cell per head")
check(re.search(r'id="view"[^>]*data-layer="1"[^>]*data-head="2"[^>]*data-query="3"[^>]*data-view="lines"', dom),
      "the URL fragment selects layer 1, head 2, token 3, lines")
check(dom.count("<line ") > 0, "the head view draws lines")


def number(id_):
    m = re.search(r'id="' + id_ + r'">([^<]*)<', dom)
    return float(m.group(1).replace("\u2212", "-")) if m else math.nan


check(abs(number("dla-logit") - a["logit"]) < 1e-4, f"page logit {number('dla-logit')} vs {a['logit']}")
check(abs(number("dla-total") - a["logit"]) < 1e-3, f"page sum of parts {number('dla-total')} vs {a['logit']}")
p_target = math.exp(a["logprob"])
check(f"p = {p_target:.3f}" in dom, f"header shows p = {p_target:.3f}")
check("\u201c the\u201d" in dom, "the target token is shown")

# The heat map view, mean of the heads, all queries
dom, log = chromium("file://" + page + "#layer=0&head=mean&token=all&view=heat", "--dump-dom")
check(not js_errors(log) and 'data-status="ok"' in dom, "heat map view: " + "\n".join(js_errors(log)))
check('id="heat"' in dom and 'data-head="-1"' in dom and 'data-query="-1"' in dom, "heat map view selected")

# A screenshot of the page as it opens
shot = os.path.join(out_dir, "explain.png")
if os.path.exists(shot):
    os.remove(shot)
chromium("file://" + page + "#layer=3&head=1", "--screenshot=" + shot, "--window-size=1280,1500", "--hide-scrollbars")
check(os.path.exists(shot) and os.path.getsize(shot) > 20000, "screenshot " + shot)

# A long sequence (thinned above --dense-limit), no continuation, occlusion by replacement
long_page = os.path.join(tmp, "long.html")
long_prompt = " ".join(["The Congress shall have power to lay and collect taxes, duties, imposts and excises."] * 3)
r = run_tool("explain", "-m", model, "-p", long_prompt, "--dense-limit", "24", "--occlude-with", "<|endoftext|>",
             "--layer", "2", "--head", "0", "-o", long_page)
check(r.returncode == 0, "explain (long): " + r.stderr)
dom, log = chromium("file://" + long_page, "--dump-dom")
check(not js_errors(log) and 'data-status="ok"' in dom, "long page: " + "\n".join(js_errors(log)))
check("strongest keys" in dom, "the long page says its attention is thinned")
check('data-layer="2" data-head="0"' in dom, "--layer / --head select the first view")
check("replaced by" in dom, "occlusion by replacement is said")

# Bad input: an Error naming the argument, exit status 1
for args, want in [
    (["-p", prompt, "--target", " the Union"], '--target: " the Union" is 2 tokens, " the" (262) + " Union" (4479), not one'),
    (["-p", ""], "--prompt: is empty"),
    (["-p", "word " * 299 + "word"], "--prompt: 300 tokens is more than the model's context of n_positions = 256"),
    (["-p", prompt, "--layer", "9"], "--layer: 9 is not in [0, 4)"),
    (["-p", prompt, "--head", "4"], "--head: 4 is not in [0, 4)"),
    (["-p", prompt, "-n", "250"], "-n/--max_new_tokens: is 250"),
]:
    r = run_tool("explain", "-m", model, "-o", os.path.join(tmp, "bad.html"), *args)
    check(r.returncode == 1 and want in r.stderr, f"{args[-2:]}: exit {r.returncode}, stderr {r.stderr.strip()!r}")

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print(f"ok: page of {T} tokens renders without JavaScript errors; screenshot {shot}")

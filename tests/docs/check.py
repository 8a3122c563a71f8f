#!/usr/bin/env python3
"""Checks the documentation (README.md, CHANGELOG.md, docs/*.md) the way a reader would use it.

  check.py SOURCE_DIR              every relative link and #anchor resolves; every shell block is marked
                                   as run by CI, run by a test, or an example; README.md has the two
                                   set-up blocks .ci/run runs; no prose tells development history; the
                                   tables are what benchmarks/report.py writes from the saved figures
  check.py SOURCE_DIR --run BUILD  runs every block marked <!-- test: run --> from a copy of the source
                                   tree's top level whose build/ is BUILD, and fails if one fails

A shell block (```sh) must follow one of these lines directly:
  <!-- ci: setup -->, <!-- ci: test -->   README's set-up commands, which .ci/run runs verbatim
  <!-- test: run -->                      run by `check.py --run` (ctest: doc_commands)
  <!-- example: why it is not run -->     not run (it downloads, or takes minutes)
Python 3 standard library only.
"""
import os
import re
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^<!-- (ci: setup|ci: test|test: run|example: .+) -->$")
SHELL = re.compile(r"^```(sh|bash|shell|console)\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HISTORY = re.compile(r"\b(this|last|previous|earlier|next) stops?\b|\bstops? ago\b|\bcommit [0-9a-f]{7}|"
                     r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b|\bhost (fast|slow)\b|"
                     r"\b(fast|slow) phases?\b", re.I)


def documents(root):
    docs = [os.path.join(root, "README.md"), os.path.join(root, "CHANGELOG.md")]
    d = os.path.join(root, "docs")
    docs += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".md")) if os.path.isdir(d) else []
    return [p for p in docs if os.path.exists(p)]


def blocks(text):
    """(line number, fence line, marker or None, body) of every fenced block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, j = i, i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            m = MARKER.match(prev.strip())
            out.append((start + 1, lines[start], m.group(1) if m else None, "\n".join(lines[start + 1:j])))
            i = j + 1
        else:
            i += 1
    return out


def prose(text):
    """The text outside fenced blocks, inline code, HTML comments and link targets."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def slug(heading):
    """GitHub's anchor for a heading."""
    h = re.sub(r"`|\*\*|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", h))


def anchors(path):
    text = re.sub(r"^```.*?^```", "", open(path, encoding="utf-8").read(), flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def check_static(root):
    errors = []
    for path in documents(root):
        rel = os.path.relpath(path, root)
        text = open(path, encoding="utf-8").read()
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto: (no internet here)
                continue
            file, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            line = text.count("\n", 0, m.start()) + 1
            if not os.path.exists(dest):
                errors.append("%s:%d: link to %s: no such file" % (rel, line, target))
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                errors.append("%s:%d: link to %s: no heading with that anchor" % (rel, line, target))
        for line, fence, marker, body in blocks(text):
            if SHELL.match(fence) and marker is None:
                errors.append("%s:%d: a shell block without <!-- test: run -->, <!-- example: ... --> or "
                              "<!-- ci: ... --> before it" % (rel, line))
            if marker and not SHELL.match(fence):
                errors.append("%s:%d: <!-- %s --> marks a block that is not ```sh" % (rel, line, marker))
            if marker in ("ci: setup", "ci: test") and rel != "README.md":
                errors.append("%s:%d: <!-- %s --> belongs in README.md" % (rel, line, marker))
        for n, line_text in enumerate(prose(text).split("\n"), 1):
            for m in HISTORY.finditer(line_text):
                errors.append("%s: development history in the prose: '%s' in: %s" % (rel, m.group(0), line_text.strip()))
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    for marker in ("ci: setup", "ci: test"):
        n = sum(1 for _, fence, m, _ in blocks(readme) if m == marker)
        if n != 1:
            errors.append("README.md: %d blocks marked <!-- %s --> (.ci/run runs exactly one)" % (n, marker))
    report = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "report.py"), "check"],
                            capture_output=True, text=True)
    if report.returncode != 0:
        errors.append("benchmarks/report.py check:\n" + report.stdout + report.stderr)
    return errors


def run_blocks(root, build):
    errors = []
    with tempfile.TemporaryDirectory(prefix="tinyllm-doc-commands-") as sandbox:
        for name in os.listdir(root):  # the source tree's top level, with build/ -> BUILD
            if name not in ("build", ".git"):
                os.symlink(os.path.join(root, name), os.path.join(sandbox, name))
        os.symlink(os.path.abspath(build), os.path.join(sandbox, "build"))
        for path in documents(root):
            rel = os.path.relpath(path, root)
            for line, _, marker, body in blocks(open(path, encoding="utf-8").read()):
                if marker != "test: run":
                    continue
                print("== %s:%d\n%s" % (rel, line, body), flush=True)
                r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], cwd=sandbox, timeout=600)
                if r.returncode != 0:
                    errors.append("%s:%d: the block failed (exit status %d)" % (rel, line, r.returncode))
    return errors


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--run"):
        sys.exit("usage: check.py SOURCE_DIR [--run BUILD_DIR]")
    root = os.path.abspath(sys.argv[1])
    errors = run_blocks(root, sys.argv[3]) if len(sys.argv) == 4 else check_static(root)
    for e in errors:
        print("FAIL: " + e)
    if not errors:
        print("docs: all checks passed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# tinyllm embed and tinyllm index on the demo model: JSON lines in and out (fields copied through, in
# order; a batch gives each line what it gives alone; unit vectors with --normalize; a bad line is an
# error naming it), and an index built from files and a folder, described, searched (text and JSON,
# reranked, approximate), found again through -m after its model folder moved, and refused when damaged.
# Usage: embed_index.sh TINYLLM_BINARY MODEL_DIR
set -euo pipefail
tool=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- embed ------------------------------------------------------------------------------------------
cat >"$tmp/in.jsonl" <<'EOF'
{"id": 1, "text": "Call me Ishmael.", "lang": "en"}

{"text": "The state of the Union is strong.", "id": "b"}
{"id": 3, "text": "The whale \u00e9t\u00e9 \u9cb8", "embedding": "replaced"}
EOF
"$tool" embed -m "$model" --pooling weighted_mean --normalize <"$tmp/in.jsonl" >"$tmp/out.jsonl" 2>"$tmp/err" \
  || fail "embed: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out.jsonl")" -eq 3 ] || fail "embed: $(wc -l <"$tmp/out.jsonl") lines out for 3 texts"
head -1 "$tmp/out.jsonl" | grep -q '^{"id":1,"text":"Call me Ishmael.","lang":"en","embedding":\[' || fail "fields: $(head -c 200 "$tmp/out.jsonl")"
sed -n 2p "$tmp/out.jsonl" | grep -q '^{"text":"The state of the Union is strong.","id":"b","embedding":\[' || fail "order"
[ "$(grep -o '"embedding"' "$tmp/out.jsonl" | wc -l)" -eq 3 ] || fail "embedding replaced"
grep -q "embedded 3 texts" "$tmp/err" || fail "embed timing: $(cat "$tmp/err")"
# 128 floats per vector, of unit length
while read -r line; do
  v=${line##*\"embedding\":[}
  v=${v%%]*}
  awk -F, -v v="$v" 'BEGIN { n = split(v, x, ","); s = 0; for (i = 1; i <= n; i++) s += x[i] * x[i];
    if (n != 128 || s < 0.9999 || s > 1.0001) { print "n " n " norm^2 " s; exit 1 } }' || fail "vector: $line"
done <"$tmp/out.jsonl"
# each line alone gives the bytes it gives in the batch
grep -v '^$' "$tmp/in.jsonl" | while read -r line; do
  printf '%s\n' "$line" | "$tool" embed -m "$model" --pooling weighted_mean --normalize 2>/dev/null
done >"$tmp/alone.jsonl"
cmp -s "$tmp/out.jsonl" "$tmp/alone.jsonl" || fail "batch differs from one by one"
"$tool" embed -m "$model" --batch 1 --pooling weighted_mean --normalize <"$tmp/in.jsonl" 2>/dev/null | cmp -s - "$tmp/out.jsonl" \
  || fail "--batch 1 differs"
# every token's vector with --pooling none: one list per token
printf '{"text": "a b c"}\n' | "$tool" embed -m "$model" --pooling none 2>/dev/null >"$tmp/none.jsonl"
[ "$(grep -o '\],\[' "$tmp/none.jsonl" | wc -l)" -eq 2 ] || fail "--pooling none: $(head -c 100 "$tmp/none.jsonl")"
# bad lines: an error naming the line, nothing after it
printf '{"text": "ok"}\n{"text": 5}\n{"text": "never"}\n' >"$tmp/bad.jsonl"
"$tool" embed -m "$model" --batch 1 <"$tmp/bad.jsonl" >"$tmp/bad.out" 2>"$tmp/err" && fail "bad line accepted"
grep -q 'error: line 2: no "text" string' "$tmp/err" || fail "bad line message: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/bad.out")" -eq 1 ] || fail "lines before the bad one"
printf '{"text": "ok"}\n\n[1, 2]\n' | "$tool" embed -m "$model" >/dev/null 2>"$tmp/err" && fail "array accepted"
grep -q 'error: line 3: not a JSON object' "$tmp/err" || fail "array message: $(cat "$tmp/err")"
printf '{"text": "ok"\n' | "$tool" embed -m "$model" >/dev/null 2>"$tmp/err" && fail "broken JSON accepted"
grep -q 'error: line 1: not JSON' "$tmp/err" || fail "broken JSON message: $(cat "$tmp/err")"
printf '{"text": ""}\n' | "$tool" embed -m "$model" >/dev/null 2>"$tmp/err" && fail "empty text accepted"
grep -q 'error: line 1: "text" is empty' "$tmp/err" || fail "empty text message: $(cat "$tmp/err")"
long=$(printf 'word %.0s' $(seq 300))
printf '{"text": "%s"}\n' "$long" | "$tool" embed -m "$model" >/dev/null 2>"$tmp/err" && fail "long text accepted"
grep -Eq 'error: line 1: "text" has 30[0-9] tokens, more than the model.s context of n_positions = 256' "$tmp/err" \
  || fail "long text message: $(cat "$tmp/err")"
printf '{"text": "%s"}\n' "$long" | "$tool" embed -m "$model" --truncate >/dev/null 2>&1 || fail "--truncate"
"$tool" embed -m "$model" --pooling max </dev/null >/dev/null 2>&1 && fail "--pooling max accepted"
"$tool" embed -m "$model" --layer 9 </dev/null >/dev/null 2>"$tmp/err" && fail "--layer 9 accepted"
grep -q "EmbeddingOptions.layer: is 9" "$tmp/err" || fail "layer message: $(cat "$tmp/err")"

# --- index ------------------------------------------------------------------------------------------
mkdir -p "$tmp/docs/more" "$tmp/model"
cp "$model"/* "$tmp/model/"
printf 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, I thought I would sail about a little and see the watery part of the world.\n' >"$tmp/docs/moby.txt"
printf 'The state of the Union is strong. We the people of the United States, in order to form a more perfect union.\n' >"$tmp/docs/more/union.txt"
printf 'The whale is the largest animal of the sea, and the ship followed it for three days.\n' >"$tmp/whale.txt"
"$tool" index build -m "$tmp/model" -o "$tmp/a.index" "$tmp/docs" "$tmp/whale.txt" --chunk-tokens 16 --chunk-overlap 4 \
  2>"$tmp/err" || fail "index build: $(cat "$tmp/err")"
grep -Eq "3 files \([0-9]+ bytes\) -> [0-9]+ chunks of up to 16 tokens" "$tmp/err" || fail "build report: $(cat "$tmp/err")"
"$tool" index info "$tmp/a.index" >"$tmp/info" || fail "info"
grep -q "^documents 3$" "$tmp/info" && grep -q "^dim 128$" "$tmp/info" && grep -q "^pooling weighted_mean$" "$tmp/info" \
  && grep -q "^standardization standardize$" "$tmp/info" && grep -q "^chunk_tokens 16$" "$tmp/info" \
  && grep -q "^model $tmp/model$" "$tmp/info" || fail "info: $(cat "$tmp/info")"
# a chunk's own text finds it first (score 1)
"$tool" index search "$tmp/a.index" "The whale is the largest animal of the sea, and the ship followed it for" -k 2 >"$tmp/hits" 2>"$tmp/err" \
  || fail "search: $(cat "$tmp/err")"
head -1 "$tmp/hits" | grep -Eq "^ 1\. 1\.0000  $tmp/whale.txt \[0, [0-9]+\)$" || fail "search: $(cat "$tmp/hits")"
[ "$(grep -c '^ [0-9]\.' "$tmp/hits")" -eq 2 ] || fail "-k 2: $(cat "$tmp/hits")"
"$tool" index search "$tmp/a.index" "the people of the United States" "a whale" -k 3 --json >"$tmp/hits.json" 2>/dev/null \
  || fail "search --json"
[ "$(wc -l <"$tmp/hits.json")" -eq 6 ] || fail "--json lines: $(cat "$tmp/hits.json")"
grep -q '^{"query":"the people of the United States","rank":1,"score":' "$tmp/hits.json" || fail "--json: $(head -1 "$tmp/hits.json")"
grep -q '"source":"'"$tmp"'/docs/more/union.txt","begin":0,"end":' "$tmp/hits.json" || fail "--json source"
"$tool" index search "$tmp/a.index" "sail about and see the watery part of the world" -k 2 --rerank >"$tmp/rr" 2>"$tmp/err" \
  || fail "rerank: $(cat "$tmp/err")"
grep -q "reranked by the model" "$tmp/err" || fail "rerank note"
head -1 "$tmp/rr" | grep -Eq '^ 1\. -?[0-9.]+ +-[0-9]+\.[0-9]{3}  '"$tmp"'/docs/moby.txt' || fail "rerank: $(cat "$tmp/rr")"
# the model folder moved: an error that says so, then -m finds it
mv "$tmp/model" "$tmp/model2"
"$tool" index search "$tmp/a.index" "whale" >/dev/null 2>"$tmp/err" && fail "missing model folder accepted"
grep -q "built with the model folder $tmp/model, which is not there: pass -m DIR" "$tmp/err" || fail "message: $(cat "$tmp/err")"
"$tool" index search "$tmp/a.index" "whale" -m "$tmp/model2" -k 1 >/dev/null 2>&1 || fail "-m"
# the same model converted to Q8 (the fingerprint ignores weight types)
"$tool" quantize -m "$tmp/model2" -o "$tmp/q8" --type q8 >/dev/null 2>&1 || fail "quantize"
"$tool" index search "$tmp/a.index" "whale" -m "$tmp/q8" -k 1 >/dev/null 2>&1 || fail "the same model as Q8"
# approximate search, where hnswlib is in the build
if "$tool" index build -m "$tmp/model2" -o "$tmp/h.index" "$tmp/docs" "$tmp/whale.txt" --hnsw 2>"$tmp/err"; then
  "$tool" index info "$tmp/h.index" | grep -q "^approximate yes" || fail "info: no graph"
  "$tool" index search "$tmp/h.index" "whale" --approximate -k 2 --ef 50 >/dev/null 2>"$tmp/err" || fail "approximate: $(cat "$tmp/err")"
  "$tool" index search "$tmp/a.index" "whale" -m "$tmp/model2" --approximate >/dev/null 2>"$tmp/err" && fail "no graph accepted"
  grep -q "SearchOptions.approximate: the index has no approximate graph" "$tmp/err" || fail "message: $(cat "$tmp/err")"
else
  grep -q "no hnswlib" "$tmp/err" || fail "--hnsw: $(cat "$tmp/err")"
fi
# damaged files
head -c 100 "$tmp/a.index" >"$tmp/cut.index"
"$tool" index search "$tmp/cut.index" "whale" >/dev/null 2>"$tmp/err" && fail "truncated index accepted"
grep -q "error: $tmp/cut.index: " "$tmp/err" || fail "truncated message: $(cat "$tmp/err")"
"$tool" index info "$model/model.safetensors" >/dev/null 2>"$tmp/err" && fail "a model file accepted as an index"
grep -q "not a tinyllm semantic index" "$tmp/err" || fail "message: $(cat "$tmp/err")"
"$tool" index build -m "$tmp/model2" -o "$tmp/x.index" "$tmp/nope.txt" >/dev/null 2>"$tmp/err" && fail "missing file accepted"
grep -q "nope.txt: cannot open" "$tmp/err" || fail "missing file message: $(cat "$tmp/err")"
for cmd in "embed" "index" "index build" "index search" "index info"; do "$tool" $cmd --help >/dev/null || fail "--help $cmd"; done
echo "embed_index: all checks passed"

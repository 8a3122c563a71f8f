#!/usr/bin/env bash
# The tinyllm command-line tool on the demo model: generate prints the oracle's greedy text, tokenize
# prints tiktoken's ids, perplexity reports its figures, every command has --help, bad flags fail.
# Usage: check.sh TINYLLM_BINARY MODEL_DIR FIXTURES_DIR
set -euo pipefail
tool=$1 model=$2 fixtures=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# generate: greedy, max_length 40, the demo prompt -> the PyTorch oracle's text (demo_greedy.txt)
"$tool" generate -m "$model" -p "The state of the Union" --max_length 40 --max_new_tokens -1 -t 1 >"$tmp/out" 2>"$tmp/err"
printf '%s\n' "$(cat "$fixtures/demo_greedy.txt")" | cmp -s - "$tmp/out" || fail "generate: $(cat "$tmp/out")"
grep -q "prompt: 5 tokens" "$tmp/err" || fail "generate timing: $(cat "$tmp/err")"
grep -q "generated: 35 tokens" "$tmp/err" || fail "generate timing: $(cat "$tmp/err")"
grep -q "loaded" "$tmp/err" || fail "generate load time: $(cat "$tmp/err")"
# speculative decoding: the same text, with its statistics on the timing line
"$tool" generate -m "$model" -p "The state of the Union" --max_length 40 --max_new_tokens -1 --prompt_lookup_num_tokens 10 \
  >"$tmp/out_pl" 2>"$tmp/err" || fail "prompt lookup: $(cat "$tmp/err")"
cmp -s "$tmp/out" "$tmp/out_pl" || fail "prompt lookup text: $(cat "$tmp/out_pl")"
grep -Eq "speculative: [0-9]+ proposed, [0-9]+ accepted" "$tmp/err" || fail "speculative stats: $(cat "$tmp/err")"
"$tool" generate -m "$model" -p "The state of the Union" --max_length 40 --max_new_tokens -1 --assistant_model "$model" \
  --assistant_type q8 --num_assistant_tokens 4 --num_assistant_tokens_schedule heuristic >"$tmp/out_dm" 2>"$tmp/err" \
  || fail "draft model: $(cat "$tmp/err")"
cmp -s "$tmp/out" "$tmp/out_dm" || fail "draft model text: $(cat "$tmp/out_dm")"
grep -q "tokens per pass" "$tmp/err" || fail "draft stats: $(cat "$tmp/err")"
# the same with dashed flag names, a stop string and sampling flags that parse
"$tool" generate -m "$model" -p "The state of the Union" --max-new-tokens 35 --stop-strings "United" >"$tmp/out2" 2>/dev/null
[ "$(wc -c <"$tmp/out2")" -lt "$(wc -c <"$tmp/out")" ] || fail "stop string did not stop"
"$tool" generate -m "$model" -p "Call me" -n 5 --do_sample --temperature 0.8 --top_k 20 --top_p 0.9 --min_p 0.01 \
  --typical_p 0.99 --repetition_penalty 1.1 --no_repeat_ngram_size 3 --bad_words whale --seed 7 >/dev/null 2>&1 \
  || fail "sampling flags"
"$tool" generate -m "$model" -p "Call me" -n 5 --num_beams 3 --num_return_sequences 2 --length_penalty 0.8 \
  --early_stopping never >"$tmp/beams" 2>/dev/null || fail "beam flags"
[ "$(wc -l <"$tmp/beams")" -eq 2 ] || fail "two sequences: $(cat "$tmp/beams")"

# tokenize: tiktoken's ids for a demo prompt
[ "$("$tool" tokenize -m "$model" -p "It's a fine day; we've" 2>/dev/null)" = "1026 338 257 3734 1110 26 356 1053" ] \
  || fail "tokenize"

# perplexity: figures on stdout
printf 'The state of the Union is strong. We the people of the United States, in order to form a more perfect union.\n' >"$tmp/text"
"$tool" perplexity -m "$model" -f "$tmp/text" --window 16 --stride 8 >"$tmp/ppl" 2>/dev/null || fail "perplexity"
grep -Eq '^perplexity [0-9]+\.[0-9]+$' "$tmp/ppl" || fail "perplexity output: $(cat "$tmp/ppl")"
grep -Eq '^top-1 accuracy 0\.[0-9]+$' "$tmp/ppl" || fail "accuracy output: $(cat "$tmp/ppl")"

# perplexity against F32: Q8 agrees on most tokens, with a small positive KL; F32 against itself exactly
"$tool" perplexity -m "$model" -f "$tmp/text" --window 16 --stride 8 --type q8 --compare-f32 >"$tmp/cmp" 2>/dev/null \
  || fail "perplexity --compare-f32"
grep -Eq '^top-1 agreement with reference (0\.(9[0-9]|8[0-9])|1\.0)[0-9]*$' "$tmp/cmp" || fail "agreement: $(cat "$tmp/cmp")"
grep -Eq '^mean KL\(reference \|\| model\) 0\.0[0-9]*[1-9][0-9]*$' "$tmp/cmp" || fail "KL: $(cat "$tmp/cmp")"
"$tool" perplexity -m "$model" -f "$tmp/text" --window 16 --type f32 --compare-f32 >"$tmp/self" 2>/dev/null
grep -Eq '^mean KL\(reference \|\| model\) 0\.000000$' "$tmp/self" || fail "self KL: $(cat "$tmp/self")"
grep -Eq '^top-1 agreement with reference 1\.0000$' "$tmp/self" || fail "self agreement: $(cat "$tmp/self")"

# --amx: windows on AMX bf16 tiles agree with F32 on most tokens where the CPU has AMX; else an error
if "$tool" perplexity -m "$model" -f "$tmp/text" --window 32 --amx --compare-f32 >"$tmp/amx" 2>"$tmp/err"; then
  grep -Eq '^top-1 agreement with reference (0\.9[0-9]*|1\.0+)$' "$tmp/amx" || fail "amx agreement: $(cat "$tmp/amx")"
else
  grep -q 'LoadOptions.amx' "$tmp/err" || fail "--amx without AMX: $(cat "$tmp/err")"
fi

# quantize: the Q8 folder loads as stored and scores exactly as the demo model converted at load
"$tool" quantize -m "$model" -o "$tmp/q8" --type q8 2>"$tmp/err" || fail "quantize: $(cat "$tmp/err")"
[ -f "$tmp/q8/model.safetensors" ] && [ -f "$tmp/q8/config.json" ] && [ -f "$tmp/q8/vocab.json" ] || fail "quantize files"
[ "$(stat -c %s "$tmp/q8/model.safetensors")" -lt "$(stat -c %s "$model/model.safetensors")" ] || fail "q8 not smaller"
"$tool" perplexity -m "$tmp/q8" -f "$tmp/text" --window 16 --stride 8 >"$tmp/ppl_q8file" 2>/dev/null || fail "q8 folder"
"$tool" perplexity -m "$model" -f "$tmp/text" --window 16 --stride 8 --type q8 >"$tmp/ppl_q8load" 2>/dev/null
cmp -s "$tmp/ppl_q8file" "$tmp/ppl_q8load" || fail "q8 folder differs from q8 at load"
"$tool" quantize -m "$model" -o "$tmp/q4" --type q4 >/dev/null 2>&1 && fail "--type q4 accepted"
"$tool" quantize -m "$model" -o "$model" >/dev/null 2>"$tmp/err" && fail "quantize over the source accepted"
grep -q "source folder" "$tmp/err" || fail "error message: $(cat "$tmp/err")"

# --help for the tool and each command; errors are reported, not crashes
for cmd in "" generate tokenize perplexity quantize; do "$tool" $cmd --help >/dev/null || fail "--help $cmd"; done
"$tool" generate -m "$model" -p x --top_p 1.5 >/dev/null 2>"$tmp/err" && fail "top_p 1.5 accepted"
grep -q "GenerationConfig.top_p" "$tmp/err" || fail "error message: $(cat "$tmp/err")"
"$tool" generate -m /nonexistent -p x >/dev/null 2>&1 && fail "missing folder accepted"
echo "cli: all checks passed"

#!/usr/bin/env bash
# Downloads a GPT-2 from the Hugging Face hub into a folder tinyllm loads:
# config.json, model.safetensors, vocab.json, merges.txt (+ tokenizer.json, generation_config.json).
#
#   scripts/download-model.sh [MODEL] [DEST]
#   MODEL: gpt2 (default), distilgpt2, gpt2-medium, gpt2-large, gpt2-xl, or any "owner/name" GPT-2 repo
#   DEST:  models/MODEL (default)
#
# pytorch_model.bin is never fetched: it is a Python pickle, and unpickling runs code.
set -euo pipefail
model=${1:-gpt2}
dest=${2:-models/$(basename "$model")}
case "$model" in
  gpt2|distilgpt2|gpt2-medium|gpt2-large|gpt2-xl) repo="openai-community/$model" ;;
  */*) repo=$model ;;
  *) echo "unknown model '$model' (gpt2, distilgpt2, gpt2-medium, gpt2-large, gpt2-xl or owner/name)" >&2; exit 2 ;;
esac
[ "$model" = distilgpt2 ] && repo="distilbert/distilgpt2"
base="https://huggingface.co/$repo/resolve/main"
mkdir -p "$dest"
fetch() {  # fetch FILE [optional]
  if curl -fL --retry 3 -o "$dest/$1.part" "$base/$1"; then
    mv "$dest/$1.part" "$dest/$1"
  else
    rm -f "$dest/$1.part"
    [ "${2:-}" = optional ] || { echo "failed to download $base/$1" >&2; exit 1; }
  fi
}
for f in config.json vocab.json merges.txt; do fetch "$f"; done
for f in tokenizer.json generation_config.json; do fetch "$f" optional; done
# One file, or shards listed in model.safetensors.index.json.
fetch model.safetensors optional
if [ ! -f "$dest/model.safetensors" ]; then
  fetch model.safetensors.index.json
  for shard in $(grep -o '"[^"]*\.safetensors"' "$dest/model.safetensors.index.json" | tr -d '"' | sort -u); do
    fetch "$shard"
  done
fi
echo "downloaded $repo into $dest"

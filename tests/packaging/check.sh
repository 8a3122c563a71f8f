#!/usr/bin/env bash
# Packaging checks, run by ctest: tinyllm used (1) through FetchContent from this git repository and
# (2) through find_package after `cmake --install`; each consumer must build and reproduce the demo
# model's greedy text. Usage: check.sh SOURCE_DIR WORK_DIR EXPECTED_TEXT_FILE
set -euo pipefail
src=$1 work=$2 expected=$3
rm -rf "$work" && mkdir -p "$work"
prompt="The state of the Union"  # tests/fixtures/demo_greedy.txt holds the oracle's text for it
want=$(cat "$expected")
max_length=40

# (1) FetchContent from the local clone (the commit at HEAD).
cmake -S "$src/examples/fetchcontent" -B "$work/fc" -DCMAKE_BUILD_TYPE=Release \
  -DTINYLLM_GIT_REPOSITORY="$src" -DTINYLLM_GIT_TAG="$(git -C "$src" rev-parse HEAD)" >"$work/fc.log" 2>&1 \
  || { cat "$work/fc.log"; exit 1; }
cmake --build "$work/fc" -j2 >>"$work/fc.log" 2>&1 || { cat "$work/fc.log"; exit 1; }
got=$("$work/fc/fc_generate" "$src/models/tiny-sotu" "$prompt" $max_length)
[ "$got" == "$want" ] || { echo "FetchContent consumer printed: $got"; echo "expected: $want"; exit 1; }
echo "FetchContent consumer: ok"

# (2) install, then find_package.
cmake -S "$src" -B "$work/lib" -DTINYLLM_BUILD_TESTS=OFF -DTINYLLM_BUILD_EXAMPLES=OFF -DTINYLLM_BUILD_BENCHMARKS=OFF \
  -DCMAKE_INSTALL_PREFIX="$work/prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
cmake --install "$work/lib" >>"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
cmake -S "$src/tests/packaging/find_package" -B "$work/fp" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/fp.log" 2>&1 || { cat "$work/fp.log"; exit 1; }
cmake --build "$work/fp" -j2 >>"$work/fp.log" 2>&1 || { cat "$work/fp.log"; exit 1; }
got=$("$work/fp/fp_generate" "$src/models/tiny-sotu" "$prompt" $max_length)
[ "$got" == "$want" ] || { echo "find_package consumer printed: $got"; echo "expected: $want"; exit 1; }
echo "find_package consumer: ok"

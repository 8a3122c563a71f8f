// Linear layer in HF's Conv1D orientation, y = act(x @ W + b), over T rows: the matrix-vector kernel
// for one row (decode), packed GEMM for many (prompt); both give bitwise the same row results.
// The reduction runs in two halves of W's rows (reduction_split), added at the end: a decode step
// reads each half on its own thread, and a thread done early carries on the other's last columns
// (balanced_halves); a prompt's columns go in pieces to whichever thread is free.
// Also the head (x @ wte^T) and the residual add.
// Depends on kernels/, backend/ and weight_type.hpp.
#pragma once

#include <algorithm>  // std::min, std::find, std::min_element
#include <atomic>     // std::atomic
#include <cstddef>    // std::size_t
#include <utility>    // std::make_pair
#include <vector>     // std::vector

#include "../backend/backend.hpp"  // Serial, parallel_for_each
#include "../detail/aligned.hpp"   // AlignedBuffer
#include "../kernels/kernels.hpp"
#include "../weight_type.hpp"

namespace tinyllm::layers {

using kernels::Epilogue;

// HF's Conv1D: y = x @ weight + bias, weight stored [n_in, n_out] row-major.
struct LinearWeights {
  WeightView weight;            // [n_in, n_out]
  const float* bias = nullptr;  // [n_out]
  int n_in = 0, n_out = 0;
};

// Columns per parallel work item: a multiple of every kernel's tile width, and 256 bytes of a row.
inline constexpr std::size_t column_tile = 64;
// Rows up to which the multi-row kernels (weights streamed once for all rows) serve a product, rather
// than the GEMM; with weights opted in to a bf16 GEMM (LoadOptions::amx, bf16_dot), up to 16.
inline constexpr std::size_t small_batch = 64;
inline std::size_t gemm_above(const WeightView& w) { return w.amx || w.bf16_dot ? 16 : small_batch; }
// Multiply-adds below which handing work to another thread costs more than it saves.
inline constexpr double min_parallel_work = 1 << 15;

// Splits n_out columns into parallel items of whole column tiles: one tile per item, unless the
// whole product (`work` multiply-adds) is too small to be worth that many threads.
struct ColumnSplit {
  std::size_t width, items;
  ColumnSplit(std::size_t n_out, double work) {
    const std::size_t tiles = (n_out + column_tile - 1) / column_tile;
    const std::size_t parts = std::max<std::size_t>(1, std::min<std::size_t>(tiles, static_cast<std::size_t>(work / min_parallel_work)));
    width = (tiles + parts - 1) / parts * column_tile;
    items = (n_out + width - 1) / width;
  }
};

// Rows of a prompt whose activations are packed at once (a multiple of every kernel's packed_a_rows):
// the packed copy is at most this many rows x n_in floats.
inline constexpr std::size_t prompt_rows = 1020;
// Columns per piece of a prompt's product handed to a free thread (a multiple of column_tile).
inline constexpr std::size_t prompt_piece = 2 * column_tile;

// Where the reduction of a product over K inputs of W splits (0: it does not). Rows [0, kh) of W are
// summed onto the bias, rows [kh, K) onto 0, then the two are added and the activation applied, in
// decode and prompt alike (so a prompt's rows stay bitwise those of decoding) and on any number of
// threads. Decoding hands the halves to different threads, so each thread streams one contiguous
// region of W instead of its columns' slice of every row, which memory serves faster. Q8 splits at
// a block of 32 (each half quantizes its own blocks of x, as a whole row would).
inline std::size_t reduction_split(const WeightView& w) {
  const std::size_t K = w.rows, unit = w.type == WeightType::Q8 ? q8_block : 16;
  return !w.outputs_are_rows && K >= 128 ? K / 2 / unit * unit : 0;
}

// Rows [k0, k1) of a matrix stored [K, n_out] (k0 a multiple of 32 for Q8).
inline WeightView reduction_rows(const WeightView& w, std::size_t k0, std::size_t k1) {
  WeightView v = w;
  if (w.type == WeightType::Q8) {  // packed rows of q8_group indices, one scale per block and output
    v.data = w.i8() + k0 * w.o_pad();
    v.scale = w.scale + k0 / q8_block * w.o_pad();
  } else {
    v.data = static_cast<const char*>(w.data) + k0 * w.cols * (w.type == WeightType::F32 ? 4 : 2);
  }
  v.rows = k1 - k0;
  return v;
}

// A prompt's product y[T, n_out] = act(x[T, K] @ W + bias) (x rows ldx apart): the activations
// packed once (row ranges split across threads; bf16 for the opt-in AMX and dot-product kernels),
// then column pieces taken one at a time by whichever thread is free.
template <class Backend>
void linear_prompt(const WeightView& W, const float* bias, const float* x, std::size_t ldx, std::size_t K, std::size_t T,
                   float* y, std::size_t n_out, Epilogue ep) {
  namespace k = kernels::impl;
  namespace amx = kernels::amx;
  namespace bf16 = kernels::bf16;
  enum class Kernel { f32, amx, bf16_dot } const kernel = W.amx ? Kernel::amx : W.bf16_dot ? Kernel::bf16_dot : Kernel::f32;
  const std::size_t panel = kernel == Kernel::amx ? amx::packed_a_rows : kernel == Kernel::bf16_dot ? bf16::packed_a_rows : k::packed_a_rows;
  thread_local detail::AlignedBuffer packed;  // the calling thread's, reused
  for (std::size_t m0 = 0; m0 < T; m0 += prompt_rows) {
    const std::size_t M = std::min(prompt_rows, T - m0);
    const float* a = x + m0 * ldx;
    packed.resize(kernel == Kernel::amx ? amx::packed_a_size(M, K) : kernel == Kernel::bf16_dot ? bf16::packed_a_size(M, K) : k::packed_a_size(M, K));
    float* ap = packed.data();
    Backend::parallel_for(0, (M + panel - 1) / panel, [&](std::size_t b, std::size_t e) {
      const std::size_t r0 = b * panel, r1 = std::min(e * panel, M);
      switch (kernel) {
        case Kernel::amx: return amx::pack_a_rows(a, ldx, M, K, r0, r1, ap);
        case Kernel::bf16_dot: return bf16::pack_a_rows(a, ldx, M, K, r0, r1, ap);
        case Kernel::f32: return k::pack_a_rows(a, ldx, M, K, r0, r1, ap);
      }
    });
    parallel_for_each<Backend>((n_out + prompt_piece - 1) / prompt_piece, [&](std::size_t i) {
      const std::size_t n0 = i * prompt_piece, n1 = std::min(n0 + prompt_piece, n_out);
      float* c = y + m0 * n_out;
      switch (kernel) {
        case Kernel::amx: return amx::gemm_packed(M, K, ap, W, bias, c, n_out, n0, n1, ep);
        case Kernel::bf16_dot: return bf16::gemm_packed(M, K, ap, W, bias, c, n_out, n0, n1, ep);
        case Kernel::f32: return k::gemm_packed(M, K, ap, W, bias, c, n_out, n0, n1, ep);
      }
    });
  }
}

// y[T, n] = act(y + second): the two halves of a split reduction.
template <class Backend>
void add_halves(float* y, const float* second, std::size_t T, std::size_t n, Epilogue ep) {
  auto rows = [&](std::size_t b, std::size_t e) {
    for (std::size_t m = b; m < e; ++m) {
      kernels::impl::add(y + m * n, second + m * n, n);
      kernels::impl::activate(y + m * n, n, ep);
    }
  };
  if (static_cast<double>(T) * n < 4 * min_parallel_work)
    rows(0, T);
  else
    Backend::parallel_for(0, T, rows);
}

// y[T, n_out] = act(x[T, K] @ W + bias) (x rows ldx apart) in one reduction: the packed GEMM for a
// prompt; for a few rows (decoding) or Q8 weights, threads take column ranges.
template <class Backend>
void product(const WeightView& W, const float* bias, const float* x, std::size_t ldx, std::size_t K, std::size_t T,
             float* y, std::size_t n_out, Epilogue ep) {
  const double work = static_cast<double>(T) * K * n_out;
  const bool serial = work < 2 * min_parallel_work;
  if (T > gemm_above(W) && W.type != WeightType::Q8) {
    if (serial) return linear_prompt<Serial>(W, bias, x, ldx, K, T, y, n_out, ep);
    return linear_prompt<Backend>(W, bias, x, ldx, K, T, y, n_out, ep);
  }
  const ColumnSplit split(n_out, work);
  Backend::parallel_for(0, split.items, [&](std::size_t b, std::size_t e) {
    const std::size_t n0 = b * split.width, n1 = std::min(e * split.width, n_out);
    if (T <= gemm_above(W))  // decoding one or a few sequences: stream the weights once
      kernels::impl::gemv_rows(T, x, ldx, W, bias, y, n_out, K, n0, n1, ep);
    else                   // a prompt with Q8 weights (activations quantized by each thread)
      kernels::impl::gemm(T, K, x, ldx, W, bias, y, n_out, n0, n1, ep);
  });
}

// A decode step's split reduction for one row of x (any weight type), balanced across threads: the
// work is 2q parts (a half of W's rows x a q-th of the columns), each summed into shared running
// sums (y for the first half, from the bias; y2 for the second, from 0). A thread done with its parts
// asks one still running for its last columns: at its next step of rows, the owner hands over half
// the columns it has left, and the other thread carries their sums on from that row. A sum is the
// same chain whoever continues it, so the results are bitwise those of the static split. The halves
// of a matrix often take unequal times (a core slowed down on a shared host, half of a mapped
// matrix in 4 KB pages), and then a static split leaves one thread waiting.
template <class Backend>
void balanced_halves(const WeightView& first, const WeightView& second, const float* bias, const float* x,
                     float* y, float* y2, std::size_t n_out, std::size_t q) {
  enum class State {
    not_started,
    running,
    asked,        // by a thief, who waits for the answer
    handed_over,  // the thief continues columns [c, c1) from row k
    finished,     // or too narrow to share
  };
  struct Part {
    std::atomic<State> state{State::not_started};
    std::size_t k = 0, c = 0;  // handed over: rows [k, rows) of columns [c, c1)
  };
  const std::size_t width = (n_out + q - 1) / q, tile = (width + column_tile - 1) / column_tile * column_tile;
  std::vector<Part> parts(2 * q);
  auto run = [&](std::size_t i) {  // part i, from its start
    const bool second_half = i >= q;
    const WeightView& w = second_half ? second : first;
    const float* xh = second_half ? x + first.rows : x;
    float* a = second_half ? y2 : y;
    const std::size_t c0 = std::min(n_out, (i % q) * tile), c1 = std::min(n_out, c0 + tile);
    for (std::size_t c = c0; c < c1; ++c) a[c] = !second_half && bias ? bias[c] : 0.0f;
    Part& part = parts[i];
    // rows between looks for a thief: the kernel's step for one row (Q8: a block)
    const std::size_t step = w.type == WeightType::Q8 ? q8_block : 8;
    std::size_t c_end = c1;
    for (std::size_t k = 0; k < w.rows; k += step) {
      if (part.state.load(std::memory_order_acquire) == State::asked) {  // give the thief half the columns left
        const std::size_t mid = c0 + (c_end - c0) / 2 / column_tile * column_tile;
        if (mid > c0) {
          part.k = k;
          part.c = mid;
          c_end = mid;
          part.state.store(State::handed_over, std::memory_order_release);
        } else {
          part.state.store(State::finished, std::memory_order_release);  // too narrow to share
        }
      }
      kernels::impl::gemv_accumulate(xh, w, a, k, std::min(w.rows, k + step), c0, c_end);
    }
    State s = State::running;
    if (!part.state.compare_exchange_strong(s, State::finished, std::memory_order_acq_rel) && s == State::asked)
      part.state.store(State::finished, std::memory_order_release);  // finished while a thief was asking
  };
  Backend::parallel_for(0, 2 * q, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      State s = State::not_started;
      if (parts[i].state.compare_exchange_strong(s, State::running, std::memory_order_acq_rel)) run(i);
    }
    for (std::size_t d = 1; d < 2 * q; ++d) {  // then help the others, from the next part on
      const std::size_t i = (e - 1 + d) % (2 * q);
      Part& part = parts[i];
      State s = State::not_started;
      if (part.state.compare_exchange_strong(s, State::running, std::memory_order_acq_rel)) {  // all of it
        run(i);
        continue;
      }
      if (s != State::running || !part.state.compare_exchange_strong(s, State::asked, std::memory_order_acq_rel))
        continue;
      while ((s = part.state.load(std::memory_order_acquire)) == State::asked) detail::cpu_relax();
      if (s != State::handed_over) continue;
      const bool second_half = i >= q;
      const WeightView& w = second_half ? second : first;
      const std::size_t c1 = std::min(n_out, std::min(n_out, (i % q) * tile) + tile);
      kernels::impl::gemv_accumulate(second_half ? x + first.rows : x, w, second_half ? y2 : y, part.k, w.rows, part.c, c1);
    }
  });
}

// y[T, n_out] = act(x[T, n_in] @ W + b)
template <class Backend>
void linear(const LinearWeights& w, const float* x, std::size_t T, float* y, Epilogue ep = Epilogue::none) {
  const std::size_t n_in = static_cast<std::size_t>(w.n_in), n_out = static_cast<std::size_t>(w.n_out);
  const std::size_t kh = reduction_split(w.weight);
  if (kh == 0) return product<Backend>(w.weight, w.bias, x, n_in, n_in, T, y, n_out, ep);
  const WeightView first = reduction_rows(w.weight, 0, kh), second = reduction_rows(w.weight, kh, n_in);
  thread_local detail::AlignedBuffer rest;  // the second half's sums [T, n_out] (the calling thread's)
  rest.resize(T * n_out);
  float* y2 = rest.data();
  const double work = static_cast<double>(T) * n_in * n_out;
  if (T > gemm_above(w.weight) || work < 2 * min_parallel_work) {  // a prompt (or too little work for threads): half by half
    product<Backend>(first, w.bias, x, n_in, kh, T, y, n_out, Epilogue::none);
    product<Backend>(second, nullptr, x + kh, n_in, n_in - kh, T, y2, n_out, Epilogue::none);
  } else if (T == 1 && Backend::num_threads() >= 2) {  // decoding one sequence
    balanced_halves<Backend>(first, second, w.bias, x, y, y2, n_out, static_cast<std::size_t>(Backend::num_threads()) / 2);
  } else {  // decoding a few sequences: each half streamed once, the halves on different threads
    const ColumnSplit split(n_out, work / 2);
    const std::size_t items = split.items;  // per half: items [0, items) of the first, [items, 2 items) of the second
    Backend::parallel_for(0, 2 * items, [&](std::size_t b, std::size_t e) {  // one sweep per half the range touches
      auto columns = [&](std::size_t i0, std::size_t i1) {
        return std::make_pair(i0 * split.width, std::min(i1 * split.width, n_out));
      };
      if (b < items) {
        const auto [n0, n1] = columns(b, std::min(e, items));
        kernels::impl::gemv_rows(T, x, n_in, first, w.bias, y, n_out, kh, n0, n1, Epilogue::none);
      }
      if (e > items) {
        const auto [n0, n1] = columns(std::max(b, items) - items, e - items);
        kernels::impl::gemv_rows(T, x + kh, n_in, second, nullptr, y2, n_out, n_in - kh, n0, n1, Epilogue::none);
      }
    });
  }
  add_halves<Backend>(y, y2, T, n_out, ep);
}

// logits[T, V] = x[T, C] @ E^T for a matrix stored row per output (the tied head: E = wte [V, C]).
// Decoding (a few rows of x): blocks of ~1 MB of E's rows, each taken by whichever thread is free
// (a fixed split leaves one thread waiting whenever the other is slowed down); the logits do not
// depend on who computes which block. A Q8 head is stored for int8 dot products, a packed row of 4
// bytes per output for every 4 of the C inputs (weight_type.hpp), so a block reads one run from
// each of C / 4 packed rows: its blocks are ~3 MB, so that the runs stay long.
template <class Backend>
void linear_transposed(const WeightView& E, const float* x, std::size_t T, float* logits) {
  const std::size_t V = E.rows, C = E.cols;
  if (T <= small_batch && Backend::num_threads() >= 2 && static_cast<double>(T) * V * C >= 4 * min_parallel_work) {
    const std::size_t row_bytes = static_cast<std::size_t>(static_cast<double>(C) * weight_type_bytes(E.type)) + 1;
    const std::size_t block_bytes = std::size_t(E.type == WeightType::Q8 ? 3 : 1) << 20;
    const std::size_t rows = std::max(column_tile, block_bytes / row_bytes / column_tile * column_tile);
    parallel_for_each<Backend>((V + rows - 1) / rows, [&](std::size_t i) {
      kernels::impl::gemv_t(T, x, C, E, logits, V, C, i * rows, std::min(V, (i + 1) * rows));
    });
    return;
  }
  const ColumnSplit split(V, static_cast<double>(T) * V * C);
  Backend::parallel_for(0, split.items, [&](std::size_t b, std::size_t e) {
    kernels::impl::gemv_t(T, x, C, E, logits, V, C, b * split.width, std::min(e * split.width, V));
  });
}

// The head of a greedy verification pass: rows i < T - 1 end in proposals[i], row i + 1 matters only
// if row i's greedy choice (its first largest logit) is proposals[i]. Logits are computed in blocks of
// vocabulary rows; once a block shows a logit above proposals[i]'s (or equal, at a lower id), rows
// after i are dropped from the rest of the sweep. `ignored` ids (eos while a minimum length holds
// them back) never count as beating a proposal, and a proposal among them drops nothing. `likely`
// ids (the recent context, where a wrong proposal's winner most often is) are tried first, one logit
// each: a row one of them already beats cuts the sweep from its start.
// Returns n: rows [0, n) hold complete logits, bitwise those linear_transposed gives, and if n < T
// some row i < n does not choose proposals[i]. Q8 heads are not pruned (returns T).
template <class Backend>
std::size_t linear_transposed_greedy(const WeightView& E, const float* x, std::size_t T, const int* proposals,
                                     const std::vector<int>& ignored, float* logits, const std::vector<int>& likely = {}) {
  const std::size_t V = E.rows, C = E.cols;
  if (T < 2 || E.type == WeightType::Q8) {
    linear_transposed<Backend>(E, x, T, logits);
    return T;
  }
  auto is_ignored = [&](std::size_t v) { return std::find(ignored.begin(), ignored.end(), static_cast<int>(v)) != ignored.end(); };
  // Each proposal's own logit, by the kernel (and arithmetic) of the full sweep.
  std::vector<float> target(T - 1);
  for (std::size_t i = 0; i + 1 < T; ++i) {
    const std::size_t p = static_cast<std::size_t>(proposals[i]);
    float* row = logits + i * V;
    kernels::impl::gemv_t(1, x + i * C, C, E, row, V, C, p, p + 1);
    target[i] = row[p];
  }
  auto beats = [&](const float* row, std::size_t v, std::size_t i) {  // does id v beat proposals[i] in row i?
    const std::size_t p = static_cast<std::size_t>(proposals[i]);
    return (row[v] > target[i] || (row[v] == target[i] && v < p)) && !is_ignored(v);
  };
  std::size_t first_rows = T;  // rows the sweep starts with: cut after a row a likely id beats
  for (std::size_t i = 0; i + 1 < T && first_rows == T; ++i) {
    if (is_ignored(static_cast<std::size_t>(proposals[i]))) continue;
    float* row = logits + i * V;
    for (int id : likely) {
      const std::size_t v = static_cast<std::size_t>(id);
      if (id < 0 || v >= V || id == proposals[i]) continue;
      kernels::impl::gemv_t(1, x + i * C, C, E, row, V, C, v, v + 1);  // the sweep writes it again, the same
      if (beats(row, v, i)) {
        first_rows = i + 1;
        break;
      }
    }
  }
  const ColumnSplit split(V, static_cast<double>(T) * V * C);
  std::vector<std::size_t> kept(split.items, T);
  constexpr std::size_t block = 256;  // vocabulary rows between checks
  Backend::parallel_for(0, split.items, [&](std::size_t b, std::size_t e) {
    std::size_t rows = first_rows;
    for (std::size_t v0 = b * split.width, end = std::min(e * split.width, V); v0 < end; v0 += block) {
      const std::size_t v1 = std::min(end, v0 + block);
      kernels::impl::gemv_t(rows, x, C, E, logits, V, C, v0, v1);
      for (std::size_t i = 0; i + 1 < rows; ++i) {
        const std::size_t p = static_cast<std::size_t>(proposals[i]);
        if (is_ignored(p)) continue;
        const float* row = logits + i * V;
        bool beaten = false;
        for (std::size_t v = v0; v < v1 && !beaten; ++v) beaten = beats(row, v, i);
        if (beaten) rows = i + 1;  // row i does not choose its proposal: later rows are not needed
      }
    }
    for (std::size_t item = b; item < e; ++item) kept[item] = rows;
  });
  return *std::min_element(kept.begin(), kept.end());
}

// x[0:n] += y[0:n]: the residual connection.
template <class Backend>
void residual_add(float* x, const float* y, std::size_t n) {
  kernels::impl::add(x, y, n);
}

}  // namespace tinyllm::layers

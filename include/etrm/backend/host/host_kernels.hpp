// SPDX-License-Identifier: Apache-2.0
// The numeric primitives for host memory, written once for the reference and the CPU backend.
// `Exec` decides how loops run (serially for the reference, oneTBB for the CPU) and how a row
// is exponentiated (std::exp, or Eigen's SIMD exp), and `Acc` the accumulation type (double for
// the reference oracle, T for speed). GEMM is not here: each
// host backend brings its own (plain loops vs Eigen). The CUDA backend implements the same
// list in backend/cuda; the semantics of every function are stated once, here.
#pragma once

#include <etrm/core/rng.hpp>
#include <etrm/ops/act.hpp>
#include <etrm/ops/functors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

ETRM_BEGIN_NAMESPACE
namespace backend::host {

template <class Exec, bool PreciseAccumulation>
struct host_kernels {
  template <class T>
  using acc_t = std::conditional_t<PreciseAccumulation, double, T>;
  using ctx_t = typename Exec::context;

  // x[i] = v   x: [n]
  template <class T>
  static void fill(ctx_t& ctx, index_t n, T v, T* x) {
    Exec::run(ctx, n, 4096, [&](index_t b, index_t e) { std::fill(x + b, x + e, v); });
  }

  // out[i] = f(a[i], ...)   all: [n]; out may alias an input.
  template <class T, class F, class... In>
  static void map(ctx_t& ctx, index_t n, F f, T* out, const In*... in) {
    Exec::run(ctx, n, 4096, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) out[i] = f(in[i]...);
    });
  }

  // f(i) for every i in [0, n), in any order; f (an ETRM_HD functor, copied to the device on
  // CUDA) writes its own outputs. For integer work that must run where the data is.
  template <class F>
  static void for_each(ctx_t& ctx, index_t n, F f) {
    Exec::run(ctx, n, 1, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) f(i);
    });
  }

  // y = softmax(x) per row   x, y: [rows, cols]; y may alias x.
  template <class T>
  static void row_softmax(ctx_t& ctx, index_t rows, index_t cols, const T* x, T* y) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        const T mx = *std::max_element(xr, xr + cols);
        for (index_t c = 0; c < cols; ++c) yr[c] = xr[c] - mx;
        Exec::exp_inplace(yr, cols);
        acc_t<T> s = 0;
        for (index_t c = 0; c < cols; ++c) s += yr[c];
        const T inv = T(1 / s);
        for (index_t c = 0; c < cols; ++c) yr[c] *= inv;
      }
    });
  }

  // x[r, c] += bias[r / group, c]: a per-(batch, key) additive mask broadcast over the
  // `group` rows (heads × queries) of each batch.   x: [rows, cols]; bias: [rows / group, cols]
  template <class T>
  static void add_row_bias(ctx_t& ctx, index_t rows, index_t cols, index_t group, const T* bias, T* x) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* br = bias + (r / group) * cols;
        for (index_t c = 0; c < cols; ++c) x[r * cols + c] += br[c];
      }
    });
  }

  // dx = y ⊙ (dy − Σ dy⊙y) per row (assigns)   y, dy, dx: [rows, cols]; dx may alias dy.
  template <class T>
  static void row_softmax_backward(ctx_t& ctx, index_t rows, index_t cols, const T* y, const T* dy, T* dx) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* yr = y + r * cols;
        const T* gr = dy + r * cols;
        T* dr = dx + r * cols;
        acc_t<T> dot = 0;
        for (index_t c = 0; c < cols; ++c) dot += acc_t<T>(yr[c]) * gr[c];
        for (index_t c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - T(dot));
      }
    });
  }

  // out[r] = reduce(x[r, :])   x: [rows, cols], out: [rows]
  template <class T>
  static void row_reduce(ctx_t& ctx, index_t rows, index_t cols, ops::reduce_op op, const T* x, T* out) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        if (op == ops::reduce_op::max) {
          out[r] = *std::max_element(xr, xr + cols);
          continue;
        }
        acc_t<T> s = 0;
        for (index_t c = 0; c < cols; ++c) s += op == ops::reduce_op::sum ? acc_t<T>(xr[c]) : acc_t<T>(xr[c]) * xr[c];
        out[r] = T(s);
      }
    });
  }

  // out[c] += Σ_r x[r, c]   x: [rows, cols], out: [cols] (accumulates)
  template <class T>
  static void column_sum_add(ctx_t& ctx, index_t rows, index_t cols, const T* x, T* out) {
    Exec::run(ctx, cols, 64, [&](index_t b, index_t e) {
      for (index_t c = b; c < e; ++c) {
        acc_t<T> s = 0;
        for (index_t r = 0; r < rows; ++r) s += x[r * cols + c];
        out[c] += T(s);
      }
    });
  }

  // y = x · rsqrt(mean(x²) + eps) per row; rstd[r] saved when non-null   x, y: [rows, cols]
  template <class T>
  static void rms_norm(ctx_t& ctx, index_t rows, index_t cols, T eps, const T* x, T* y, T* rstd) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        acc_t<T> s = 0;
        for (index_t c = 0; c < cols; ++c) s += acc_t<T>(xr[c]) * xr[c];
        const T inv = T(1 / std::sqrt(s / acc_t<T>(cols) + acc_t<T>(eps)));
        for (index_t c = 0; c < cols; ++c) y[r * cols + c] = xr[c] * inv;
        if (rstd) rstd[r] = inv;
      }
    });
  }

  // dx = rstd · (dy − y · mean(dy ⊙ y)) per row (assigns)   y, dy, dx: [rows, cols], rstd: [rows]
  template <class T>
  static void rms_norm_backward(ctx_t& ctx, index_t rows, index_t cols, const T* y, const T* rstd, const T* dy, T* dx) {
    Exec::run(ctx, rows, 16, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* yr = y + r * cols;
        const T* gr = dy + r * cols;
        acc_t<T> dot = 0;
        for (index_t c = 0; c < cols; ++c) dot += acc_t<T>(yr[c]) * gr[c];
        const T m = T(dot / acc_t<T>(cols));
        for (index_t c = 0; c < cols; ++c) dx[r * cols + c] = rstd[r] * (gr[c] - yr[c] * m);
      }
    });
  }

  // h = silu(gate) ⊙ up   gu: [rows, 2·inter] as [gate | up], h: [rows, inter]
  template <class T>
  static void swiglu(ctx_t& ctx, index_t rows, index_t inter, const T* gu, T* h) {
    Exec::run(ctx, rows, 8, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T* g = gu + r * 2 * inter;
        T* hr = h + r * inter;
        for (index_t c = 0; c < inter; ++c) hr[c] = -g[c];
        Exec::exp_inplace(hr, inter);
        for (index_t c = 0; c < inter; ++c) hr[c] = g[c] / (T(1) + hr[c]) * g[inter + c];
      }
    });
  }

  // dgu from dh (assigns)   gu, dgu: [rows, 2·inter] (not aliased), dh: [rows, inter]
  template <class T>
  static void swiglu_backward(ctx_t& ctx, index_t rows, index_t inter, const T* gu, const T* dh, T* dgu) {
    Exec::run(ctx, rows, 8, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r) {
        const T *g = gu + r * 2 * inter, *u = g + inter, *d = dh + r * inter;
        T *dg = dgu + r * 2 * inter, *du = dg + inter;
        // exp(−g) a row at a time, through the backend's vectorised exp, in dg until used
        for (index_t c = 0; c < inter; ++c) dg[c] = -g[c];
        Exec::exp_inplace(dg, inter);
        for (index_t c = 0; c < inter; ++c) {
          const T sig = T(1) / (T(1) + dg[c]);
          dg[c] = d[c] * u[c] * sig * (T(1) + g[c] * (T(1) - sig));
          du[c] = d[c] * g[c] * sig;
        }
      }
    });
  }

  // dst[r·dst_stride + c] = scale · src[r·src_stride + c]   r < rows, c < cols
  // scale == 0 writes zeros without reading src (which may be uninitialised).
  template <class T>
  static void copy_2d(ctx_t& ctx, index_t rows, index_t cols, const T* src, index_t src_stride, T* dst,
                      index_t dst_stride, T scale) {
    Exec::run(ctx, rows, 8, [&](index_t b, index_t e) {
      for (index_t r = b; r < e; ++r)
        for (index_t c = 0; c < cols; ++c) dst[r * dst_stride + c] = scale == T(0) ? T(0) : scale * src[r * src_stride + c];
    });
  }

  // y[b, j, i] = x[b, i, j]   x: [batch, r, c], y: [batch, c, r]
  template <class T>
  static void transpose(ctx_t& ctx, index_t batch, index_t r, index_t c, const T* x, T* y) {
    Exec::run(ctx, batch * r, 64, [&](index_t b0, index_t e0) {
      for (index_t bi = b0; bi < e0; ++bi) {
        const index_t b = bi / r, i = bi % r;
        for (index_t j = 0; j < c; ++j) y[(b * c + j) * r + i] = x[(b * r + i) * c + j];
      }
    });
  }

  // y[a, c, b, e] = x[a, b, c, e]   x: [A, B, C, E], y: [A, C, B, E]
  template <class T>
  static void permute_0213(ctx_t& ctx, index_t A, index_t B, index_t C, index_t E, const T* x, T* y) {
    Exec::run(ctx, A * B, 16, [&](index_t b0, index_t e0) {
      for (index_t ab = b0; ab < e0; ++ab) {
        const index_t a = ab / B, b = ab % B;
        for (index_t c = 0; c < C; ++c)
          std::memcpy(y + ((a * C + c) * B + b) * E, x + ((a * B + b) * C + c) * E, sizeof(T) * E);
      }
    });
  }

  // Splits fused qkv into heads and applies rotate-half RoPE to q and k (cos/sin null: none).
  // qkv: [B, S, 3, H, d]; cos, sin: [S, d]; q, k, v: [B, H, S, d]
  template <class T>
  static void split_heads_rope(ctx_t& ctx, index_t B, index_t S, index_t H, index_t d, const T* qkv, const T* cos,
                               const T* sin, T* q, T* k, T* v) {
    Exec::run(ctx, B * S, 8, [&](index_t b0, index_t e0) {
      for (index_t bs = b0; bs < e0; ++bs) {
        const index_t b = bs / S, s = bs % S;
        for (index_t h = 0; h < H; ++h) {
          const T* src = qkv + ((bs * 3) * H + h) * d;
          const index_t dst = ((b * H + h) * S + s) * d;
          rotate(src, cos, sin, s, d, q + dst, false);
          rotate(src + H * d, cos, sin, s, d, k + dst, false);
          std::memcpy(v + dst, src + 2 * H * d, sizeof(T) * d);
        }
      }
    });
  }

  // Inverse of split_heads_rope for gradients (assigns dqkv)   dq, dk, dv: [B, H, S, d]
  template <class T>
  static void merge_heads_rope_backward(ctx_t& ctx, index_t B, index_t S, index_t H, index_t d, const T* dq,
                                        const T* dk, const T* dv, const T* cos, const T* sin, T* dqkv) {
    Exec::run(ctx, B * S, 8, [&](index_t b0, index_t e0) {
      for (index_t bs = b0; bs < e0; ++bs) {
        const index_t b = bs / S, s = bs % S;
        for (index_t h = 0; h < H; ++h) {
          T* dst = dqkv + ((bs * 3) * H + h) * d;
          const index_t src = ((b * H + h) * S + s) * d;
          rotate(dq + src, cos, sin, s, d, dst, true);
          rotate(dk + src, cos, sin, s, d, dst + H * d, true);
          std::memcpy(dst + 2 * H * d, dv + src, sizeof(T) * d);
        }
      }
    });
  }

  // out[b·stride + i·dim + j] = scale · table[ids[b, i], j]   ids: [batch, n], table: [*, dim]
  template <class T>
  static void gather_rows(ctx_t& ctx, index_t batch, index_t n, index_t dim, const std::int32_t* ids, const T* table,
                          T scale, T* out, index_t out_batch_stride) {
    Exec::run(ctx, batch * n, 16, [&](index_t b0, index_t e0) {
      for (index_t bi = b0; bi < e0; ++bi) {
        const T* src = table + index_t(ids[bi]) * dim;
        T* dst = out + (bi / n) * out_batch_stride + (bi % n) * dim;
        for (index_t j = 0; j < dim; ++j) dst[j] = scale * src[j];
      }
    });
  }

  // table_grad[ids[b, i], j] += scale · src[b·stride + i·dim + j] (accumulates; duplicate ids
  // add up). Parallel over columns so that duplicates never race.
  template <class T>
  static void scatter_add_rows(ctx_t& ctx, index_t batch, index_t n, index_t dim, const std::int32_t* ids, const T* src,
                               index_t src_batch_stride, T scale, T* table_grad) {
    Exec::run(ctx, dim, 64, [&](index_t j0, index_t j1) {
      for (index_t bi = 0; bi < batch * n; ++bi) {
        const T* s = src + (bi / n) * src_batch_stride + (bi % n) * dim;
        T* t = table_grad + index_t(ids[bi]) * dim;
        for (index_t j = j0; j < j1; ++j) t[j] += scale * s[j];
      }
    });
  }

  // Token cross-entropy per sequence, fused with its gradient and the accuracy counts.
  // logits, dlogits: sequence b starts at b·batch_stride, then [L, V]; labels: [B, L] (−100 = ignore). Per sequence b: seq_loss[b] = mean over
  // valid tokens of −log p_label (stablemax or softmax, computed in double), seq_count[b] =
  // valid tokens, seq_correct[b] = valid tokens whose argmax equals the label. When dlogits is
  // non-null it is assigned grad_scale / max(count, 1) · ∂(Σ_tokens CE)/∂logits. pred (nullable,
  // [B, L]) gets the argmax.
  template <class T>
  static void cross_entropy(ctx_t& ctx, index_t B, index_t L, index_t V, index_t batch_stride, ops::loss_kind kind, const T* logits,
                            const std::int32_t* labels, T grad_scale, T* seq_loss, std::int32_t* seq_count,
                            std::int32_t* seq_correct, T* dlogits, std::int32_t* pred) {
    Exec::run(ctx, B, 1, [&](index_t b0, index_t e0) {
      for (index_t b = b0; b < e0; ++b) {
        std::int32_t count = 0, correct = 0;
        for (index_t l = 0; l < L; ++l) count += labels[b * L + l] != -100;
        const double w = double(grad_scale) / std::max<std::int32_t>(count, 1);
        double loss = 0;
        for (index_t l = 0; l < L; ++l) {
          const T* x = logits + b * batch_stride + l * V;
          const std::int32_t y = labels[b * L + l];
          const index_t am = std::max_element(x, x + V) - x;
          if (pred) pred[b * L + l] = std::int32_t(am);
          T* g = dlogits ? dlogits + b * batch_stride + l * V : nullptr;
          if (y == -100) {
            if (g) std::fill(g, g + V, T(0));
            continue;
          }
          correct += am == y;
          loss += token_loss(kind, x, V, y, g, w);
        }
        seq_loss[b] = T(loss / std::max<std::int32_t>(count, 1));
        seq_count[b] = count;
        seq_correct[b] = correct;
      }
    });
  }

  // Halting head loss: loss[b] = BCE-with-logits(q[b, 0], target[b]); dq (nullable, assigned)
  // = grad_scale · ∂loss/∂q with the q_continue column zero.   q, dq: [B, 2]
  template <class T>
  static void halt_loss(ctx_t& ctx, index_t B, const T* q, const std::int32_t* target, T grad_scale, T* loss, T* dq) {
    Exec::run(ctx, B, 64, [&](index_t b0, index_t e0) {
      for (index_t b = b0; b < e0; ++b) {
        const double x = q[2 * b], t = target[b] ? 1.0 : 0.0;
        loss[b] = T(std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))));
        if (dq) {
          dq[2 * b] = T(grad_scale * (1.0 / (1.0 + std::exp(-x)) - t));
          dq[2 * b + 1] = T(0);
        }
      }
    });
  }

  // Resets rows whose flag is set to the initial states.   zh, zl: [B, S, D]; h_init, l_init: [D]
  template <class T>
  static void reset_rows(ctx_t& ctx, index_t B, index_t S, index_t D, const std::uint8_t* flag, const T* h_init,
                         const T* l_init, T* zh, T* zl) {
    Exec::run(ctx, B * S, 16, [&](index_t b0, index_t e0) {
      for (index_t bs = b0; bs < e0; ++bs) {
        if (!flag[bs / S]) continue;
        std::memcpy(zh + bs * D, h_init, sizeof(T) * D);
        std::memcpy(zl + bs * D, l_init, sizeof(T) * D);
      }
    });
  }

  // current[b, :] = fresh[b, :] where flag[b]   fresh, current: [B, n]
  template <class V>
  static void select_rows(ctx_t& ctx, index_t B, index_t n, const std::uint8_t* flag, const V* fresh, V* current) {
    Exec::run(ctx, B, 16, [&](index_t b0, index_t e0) {
      for (index_t b = b0; b < e0; ++b)
        if (flag[b]) std::memcpy(current + b * n, fresh + b * n, sizeof(V) * n);
    });
  }

  // ACT bookkeeping after a supervision step, row by row (ops/act.hpp); row b draws as row
  // first_row + b of the global batch.   q: [B, 2]; steps: [B]; halted: [B]
  template <class T>
  static void act_update(ctx_t& ctx, index_t B, std::int32_t max_steps, bool training, bool use_continue,
                         double explore_prob, philox_key key, std::uint64_t draw, const T* q, std::int32_t* steps,
                         std::uint8_t* halted, std::uint64_t first_row = 0) {
    Exec::run(ctx, B, 64, [&](index_t b0, index_t e0) {
      for (index_t b = b0; b < e0; ++b)
        ops::act_row_update(b, max_steps, training, use_continue, explore_prob, key, draw, q, steps, halted, first_row);
    });
  }

  // AdamATan2 (trm-computation.md §4.1): decay, moments, p −= lr/bc1 · atan2(m, sqrt(v/bc2)).   all: [n]
  template <class T>
  static void adam_atan2(ctx_t& ctx, index_t n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2) {
    Exec::run(ctx, n, 4096, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        p[i] *= T(1) - lr * wd;
        m[i] = b1 * m[i] + (T(1) - b1) * g[i];
        v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
        p[i] -= lr / bc1 * std::atan2(m[i], std::sqrt(v[i]) / std::sqrt(bc2));
      }
    });
  }

  // AdamW with decoupled decay.   all: [n]
  template <class T>
  static void adamw(ctx_t& ctx, index_t n, T* p, const T* g, T* m, T* v, T lr, T wd, T b1, T b2, T bc1, T bc2, T eps) {
    Exec::run(ctx, n, 4096, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        p[i] *= T(1) - lr * wd;
        m[i] = b1 * m[i] + (T(1) - b1) * g[i];
        v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
      }
    });
  }

  // shadow = rate · shadow + (1 − rate) · p   p, shadow: [n]
  template <class T>
  static void ema(ctx_t& ctx, index_t n, const T* p, T* shadow, T rate) {
    Exec::run(ctx, n, 4096, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) shadow[i] = rate * shadow[i] + (T(1) - rate) * p[i];
    });
  }

  // Sparse SignSGD on the puzzle table for the rows in the batch: gradients of duplicate ids
  // are summed before the sign; w ← w·(1 − lr·wd) − lr·sign(g).   ids: [B]; grad: [B, D]
  template <class T>
  static void sign_sgd_rows(ctx_t& ctx, index_t B, index_t D, const std::int32_t* ids, const T* grad, T* table, T lr,
                            T wd) {
    Exec::run(ctx, D, 64, [&](index_t j0, index_t j1) {
      for (index_t b = 0; b < B; ++b) {
        bool first = true;
        for (index_t o = 0; o < b; ++o) first = first && ids[o] != ids[b];
        if (!first) continue;
        for (index_t j = j0; j < j1; ++j) {
          acc_t<T> g = 0;
          for (index_t o = b; o < B; ++o)
            if (ids[o] == ids[b]) g += grad[o * D + j];
          T& w = table[index_t(ids[b]) * D + j];
          w = w * (T(1) - lr * wd) - lr * T((g > 0) - (g < 0));
        }
      }
    });
  }

 private:
  // out = rotate-half RoPE of src at position s (inverse rotation when `inverse`).
  template <class T>
  static void rotate(const T* src, const T* cos, const T* sin, index_t s, index_t d, T* out, bool inverse) {
    if (!cos) {
      std::memcpy(out, src, sizeof(T) * d);
      return;
    }
    const index_t h = d / 2;
    const T* c = cos + s * d;
    const T* sn = sin + s * d;
    const T sign = inverse ? T(-1) : T(1);
    for (index_t i = 0; i < h; ++i) {
      out[i] = src[i] * c[i] - sign * src[i + h] * sn[i];
      out[i + h] = src[i + h] * c[i + h] + sign * src[i] * sn[i + h];
    }
  }

  // −log p_y for one token; adds w · ∂/∂x into g when non-null (g is assigned first).
  template <class T>
  static double token_loss(ops::loss_kind kind, const T* x, index_t V, std::int32_t y, T* g, double w) {
    if (kind == ops::loss_kind::softmax) {
      double mx = x[0];
      for (index_t v = 1; v < V; ++v) mx = std::max(mx, double(x[v]));
      double s = 0;
      for (index_t v = 0; v < V; ++v) s += std::exp(double(x[v]) - mx);
      if (g)
        for (index_t v = 0; v < V; ++v) g[v] = T(w * (std::exp(double(x[v]) - mx) / s - (v == y)));
      return std::log(s) + mx - double(x[y]);
    }
    // stablemax: s(x) = 1/(1 − x) for x < 0, x + 1 otherwise; s'(x) = s² resp. 1.
    auto sm = [](double v) { return v < 0 ? 1.0 / (1.0 - v + 1e-30) : v + 1.0; };
    double s = 0;
    for (index_t v = 0; v < V; ++v) s += sm(x[v]);
    const double sy = sm(x[y]);
    if (g) {
      for (index_t v = 0; v < V; ++v) {
        const double sv = sm(x[v]);
        const double dsv = x[v] < 0 ? sv * sv : 1.0;
        g[v] = T(w * dsv * (1.0 / s - (v == y ? 1.0 / sy : 0.0)));
      }
    }
    return std::log(s) - std::log(sy);
  }
};

}  // namespace backend::host
ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// Loss and training-bookkeeping CUDA kernels: token cross-entropy (stablemax or softmax, one
// block per sequence, one thread per token, the loss math in double exactly as on the host,
// argmax ties to the first index like std::max_element), the halting BCE, ACT bookkeeping with
// the counter-based RNG (so exploration draws equal the host's), and sparse SignSGD on the
// puzzle table. Semantics are those of backend/host/host_kernels.hpp.
#pragma once

#include <etrm/backend/cuda/launch.cuh>
#include <etrm/core/rng.hpp>
#include <etrm/ops/act.hpp>
#include <etrm/ops/functors.hpp>

ETRM_BEGIN_NAMESPACE
namespace backend::cuda {
namespace detail {

// −log p_y for one token of V logits; assigns w · ∂/∂x into g when non-null.
template <class T>
__device__ double token_loss(int kind, const T* x, index_t V, std::int32_t y, T* g, double w) {
  if (kind == int(ops::loss_kind::softmax)) {
    double mx = double(x[0]);
    for (index_t v = 1; v < V; ++v) {
      const double xv = double(x[v]);
      mx = mx < xv ? xv : mx;
    }
    double s = 0;
    for (index_t v = 0; v < V; ++v) s += exp(double(x[v]) - mx);
    if (g)
      for (index_t v = 0; v < V; ++v) g[v] = T(w * (exp(double(x[v]) - mx) / s - (v == y ? 1.0 : 0.0)));
    return log(s) + mx - double(x[y]);
  }
  // stablemax: s(x) = 1/(1 − x) for x < 0, x + 1 otherwise; s'(x) = s² resp. 1.
  auto sm = [](double v) { return v < 0 ? 1.0 / (1.0 - v + 1e-30) : v + 1.0; };
  double s = 0;
  for (index_t v = 0; v < V; ++v) s += sm(double(x[v]));
  const double sy = sm(double(x[y]));
  if (g) {
    for (index_t v = 0; v < V; ++v) {
      const double sv = sm(double(x[v]));
      const double dsv = x[v] < 0 ? sv * sv : 1.0;
      g[v] = T(w * dsv * (1.0 / s - (v == y ? 1.0 / sy : 0.0)));
    }
  }
  return log(s) - log(sy);
}

template <class T>
__global__ void cross_entropy_kernel(index_t B, index_t L, index_t V, index_t batch_stride, int kind, const T* logits,
                                     const std::int32_t* labels, T grad_scale, T* seq_loss, std::int32_t* seq_count,
                                     std::int32_t* seq_correct, T* dlogits, std::int32_t* pred) {
  for (index_t b = blockIdx.x; b < B; b += gridDim.x) {
    int count = 0;
    for (index_t l = threadIdx.x; l < L; l += blockDim.x) count += labels[b * L + l] != -100;
    count = block_sum(count);
    const int denom = count > 1 ? count : 1;
    const double w = double(grad_scale) / double(denom);
    double loss = 0;
    int correct = 0;
    for (index_t l = threadIdx.x; l < L; l += blockDim.x) {
      const T* x = logits + b * batch_stride + l * V;
      const std::int32_t y = labels[b * L + l];
      index_t am = 0;
      for (index_t v = 1; v < V; ++v)
        if (x[am] < x[v]) am = v;
      if (pred) pred[b * L + l] = std::int32_t(am);
      T* g = dlogits ? dlogits + b * batch_stride + l * V : nullptr;
      if (y == -100) {
        if (g)
          for (index_t v = 0; v < V; ++v) g[v] = T(0);
        continue;
      }
      correct += am == index_t(y);
      loss += token_loss(kind, x, V, y, g, w);
    }
    loss = block_sum(loss);
    correct = block_sum(correct);
    if (threadIdx.x == 0) {
      seq_loss[b] = T(loss / double(denom));
      seq_count[b] = count;
      seq_correct[b] = correct;
    }
  }
}

template <class T>
__global__ void halt_loss_kernel(index_t B, const T* q, const std::int32_t* target, T grad_scale, T* loss, T* dq) {
  for (index_t b = index_t(blockIdx.x) * blockDim.x + threadIdx.x; b < B; b += index_t(blockDim.x) * gridDim.x) {
    const double x = double(q[2 * b]), t = target[b] ? 1.0 : 0.0;
    loss[b] = T((x < 0.0 ? 0.0 : x) - x * t + log1p(exp(-fabs(x))));
    if (dq) {
      dq[2 * b] = T(double(grad_scale) * (1.0 / (1.0 + exp(-x)) - t));
      dq[2 * b + 1] = T(0);
    }
  }
}

template <class T>
__global__ void act_update_kernel(index_t B, std::int32_t max_steps, bool training, bool use_continue,
                                  double explore_prob, philox_key key, std::uint64_t draw, const T* q,
                                  std::int32_t* steps, std::uint8_t* halted, std::uint64_t first_row) {
  for (index_t b = index_t(blockIdx.x) * blockDim.x + threadIdx.x; b < B; b += index_t(blockDim.x) * gridDim.x)
    ops::act_row_update(b, max_steps, training, use_continue, explore_prob, key, draw, q, steps, halted, first_row);
}

// One thread per (b, j): the first occurrence of each id sums the gradients of all its
// occurrences (in batch order), then applies decay and the sign step.
template <class T>
__global__ void sign_sgd_rows_kernel(index_t B, index_t D, const std::int32_t* ids, const T* grad, T* table, T lr,
                                     T wd) {
  for (index_t o = index_t(blockIdx.x) * blockDim.x + threadIdx.x; o < B * D; o += index_t(blockDim.x) * gridDim.x) {
    const index_t b = o / D, j = o - b * D;
    const std::int32_t id = ids[b];
    bool first = true;
    for (index_t p = 0; p < b && first; ++p) first = ids[p] != id;
    if (!first) continue;
    double g = 0;
    for (index_t p = b; p < B; ++p)
      if (ids[p] == id) g += double(grad[p * D + j]);
    T& w = table[index_t(id) * D + j];
    w = w * (T(1) - lr * wd) - lr * T((g > 0) - (g < 0));
  }
}

}  // namespace detail

struct loss_ops {
  // Token cross-entropy per sequence fused with its gradient and accuracy counts (see the host
  // version for the exact contract). logits, dlogits: sequence b at b·batch_stride, then [L, V];
  // labels: [B, L] (−100 = ignore); seq_*: [B]; pred (nullable): [B, L].
  template <class T>
  static void cross_entropy(context& ctx, index_t B, index_t L, index_t V, index_t batch_stride, ops::loss_kind kind,
                            const T* logits, const std::int32_t* labels, T grad_scale, T* seq_loss,
                            std::int32_t* seq_count, std::int32_t* seq_correct, T* dlogits, std::int32_t* pred) {
    if (B <= 0) return;
    detail::cross_entropy_kernel<T><<<detail::grid_rows(B), 128, 0, ctx.stream()>>>(
        B, L, V, batch_stride, int(kind), logits, labels, grad_scale, seq_loss, seq_count, seq_correct, dlogits, pred);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // Halting head loss: loss[b] = BCE-with-logits(q[b, 0], target[b]); dq (nullable, assigned)
  // = grad_scale · ∂loss/∂q with the q_continue column zero.   q, dq: [B, 2]
  template <class T>
  static void halt_loss(context& ctx, index_t B, const T* q, const std::int32_t* target, T grad_scale, T* loss, T* dq) {
    if (B <= 0) return;
    detail::halt_loss_kernel<T><<<detail::grid_for(B, 128), 128, 0, ctx.stream()>>>(B, q, target, grad_scale, loss, dq);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // ACT bookkeeping after a supervision step (trm-computation.md §2.2), identical draws to the host.
  // q: [B, 2]; steps: [B]; halted: [B]
  template <class T>
  static void act_update(context& ctx, index_t B, std::int32_t max_steps, bool training, bool use_continue,
                         double explore_prob, philox_key key, std::uint64_t draw, const T* q, std::int32_t* steps,
                         std::uint8_t* halted, std::uint64_t first_row = 0) {
    if (B <= 0) return;
    detail::act_update_kernel<T><<<detail::grid_for(B, 128), 128, 0, ctx.stream()>>>(
        B, max_steps, training, use_continue, explore_prob, key, draw, q, steps, halted, first_row);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }

  // Sparse SignSGD on the puzzle table for the rows in the batch; duplicate ids' gradients are
  // summed before the sign; w ← w·(1 − lr·wd) − lr·sign(g).   ids: [B]; grad: [B, D]
  template <class T>
  static void sign_sgd_rows(context& ctx, index_t B, index_t D, const std::int32_t* ids, const T* grad, T* table, T lr,
                            T wd) {
    if (B <= 0 || D <= 0) return;
    detail::sign_sgd_rows_kernel<T>
        <<<detail::grid_for(B * D), detail::block_threads, 0, ctx.stream()>>>(B, D, ids, grad, table, lr, wd);
    ETRM_CUDA_CHECK_LAUNCH(ctx);
  }
};

}  // namespace backend::cuda
ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// TRM's single reasoning network (`L_level`): net(h, inj) = blocks(h + inj) with L_layers
// blocks applied in order, reused for both the latent update z ← net(z, y + x) and the answer
// update y ← net(y, z). One weight set runs many times per step, so everything an
// application needs for backward lives in a caller-owned `saved`. A layer (contract.hpp) of
// arity 2, inputs (h, inj), with seq_shape.
#pragma once

#include <etrm/layers/block.hpp>
#include <etrm/layers/contract.hpp>
#include <type_traits>
#include <vector>

ETRM_BEGIN_NAMESPACE

template <class D, class Mixer>
class reasoning_net {
 public:
  using block_t = block<D, Mixer>;

  reasoning_net() = default;
  reasoning_net(param_layout& l, const std::string& prefix, index_t layers, index_t width, index_t seq,
                double expansion) {
    for (index_t i = 0; i < layers; ++i)
      blocks_.push_back(block_t::declare(l, prefix + "layers." + std::to_string(i) + ".", width, seq, expansion));
  }
  index_t layers() const { return index_t(blocks_.size()); }

  static constexpr std::size_t arity = 2;
  template <class T>
  using shape = seq_shape<T>;
  template <class T>
  std::array<index_t, 2> input_sizes(const seq_shape<T>& sh) const {
    const index_t n = sh.dims.tokens() * sh.dims.width;
    return {n, n};
  }
  template <class T>
  index_t output_size(const seq_shape<T>& sh) const {
    return sh.dims.tokens() * sh.dims.width;
  }

  template <class T>
  struct saved {
    T* in = nullptr;       // h + inj: [B, S, D]
    std::vector<T*> outs;  // outputs of blocks 0..L−2
    std::vector<typename block_t::template saved<T>> blocks;
  };
  // Carves one application's activations from the arena; `s` keeps its vectors' capacity, so
  // a steady-state step allocates nothing.
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const seq_shape<T>& sh) const {
    const index_t n = sh.dims.tokens() * sh.dims.width;
    s.in = ws.template take<T>(n);
    s.outs.resize(blocks_.size() - 1);
    for (auto& o : s.outs) o = ws.template take<T>(n);
    s.blocks.resize(blocks_.size());
    for (std::size_t i = 0; i < blocks_.size(); ++i) blocks_[i].take(s.blocks[i], ws, sh);
  }

  // out = net(h, inj); all [B, S, D]. With `s`, out must stay valid until backward.
  template <class T>
  void forward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 2> in, T* out,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t n = sh.dims.tokens() * sh.dims.width;
    T* sum = s ? s->in : ws.template take<T>(n);
    kernels<D>::map(ctx, n, ops::add_fn<T>{}, sum, in[0], in[1]);
    T* scratch[2] = {nullptr, nullptr};
    const T* cur = sum;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      T* y = out;
      if (i + 1 < blocks_.size()) {
        if (s)
          y = s->outs[i];
        else {
          if (!scratch[i % 2]) scratch[i % 2] = ws.template take<T>(n);
          y = scratch[i % 2];
        }
      }
      blocks_[i].forward(ctx, p, sh, {cur}, y, s ? &s->blocks[i] : nullptr, ws);
      cur = y;
    }
    ws.rewind(mark);
  }

  // dout → (dh, dinj), assigned. Both are ∂/∂(h + inj): a null one is skipped, so a caller that
  // needs the gradient once asks for one. The inputs are not read (their sum is in saved).
  template <class T>
  void backward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 2>, const T* out,
                const saved<T>& s, const T* dout, layer_grads<T, 2> din, T* g, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    const index_t n = sh.dims.tokens() * sh.dims.width;
    T* d_sum = din[0] ? din[0] : din[1];
    T* buf[2] = {ws.template take<T>(n), ws.template take<T>(n)};
    const T* dy = dout;
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      const T* x = i == 0 ? s.in : s.outs[i - 1];
      const T* y = i + 1 == blocks_.size() ? out : s.outs[i];
      T* dx = i == 0 ? d_sum : buf[i % 2];
      blocks_[i].backward(ctx, p, sh, {x}, y, s.blocks[i], dy, {dx}, g, ws);
      dy = dx;
    }
    if (din[0] && din[1]) device_traits<D>::copy(ctx, din[1], din[0], sizeof(T) * std::size_t(n));
    ws.rewind(mark);
  }

 private:
  std::vector<block_t> blocks_;
};
static_assert(layer<reasoning_net<archetype_device, attention_mixer<archetype_device>>, archetype_device, float>);

ETRM_END_NAMESPACE

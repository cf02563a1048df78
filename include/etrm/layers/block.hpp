// SPDX-License-Identifier: Apache-2.0
// One TRM block: a token mixer (attention or mlp_t, chosen at compile time) followed by the
// channel SwiGLU MLP, each with its post-norm residual. x: [B, S, D] → y: [B, S, D].
// A layer (contract.hpp) of arity 1 with seq_shape.
#pragma once

#include <etrm/core/params.hpp>
#include <etrm/layers/attention.hpp>
#include <etrm/layers/contract.hpp>
#include <etrm/layers/dims.hpp>
#include <etrm/layers/swiglu_mlp.hpp>
#include <etrm/layers/token_mlp.hpp>
#include <string>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

// Declares a mixer's parameters under a block prefix (official names) and returns the mixer.
template <class D>
attention_mixer<D> declare_mixer(std::type_identity<attention_mixer<D>>, param_layout& l, const std::string& prefix,
                                 index_t width, index_t, double) {
  const double std = 1.0 / std::sqrt(double(width));
  attention_mixer<D> m;
  m.qkv = l.add(prefix + "self_attn.qkv_proj.weight", {3 * width, width}, init_spec::trunc_normal(std)).offset;
  m.o = l.add(prefix + "self_attn.o_proj.weight", {width, width}, init_spec::trunc_normal(std)).offset;
  return m;
}

template <class D>
swiglu_mlp<D> declare_swiglu(param_layout& l, const std::string& prefix, index_t width, index_t inter) {
  swiglu_mlp<D> m{width, inter};
  m.gate_up =
      l.add(prefix + "gate_up_proj.weight", {2 * inter, width}, init_spec::trunc_normal(1.0 / std::sqrt(double(width))))
          .offset;
  m.down = l.add(prefix + "down_proj.weight", {width, inter}, init_spec::trunc_normal(1.0 / std::sqrt(double(inter))))
               .offset;
  return m;
}

template <class D>
token_mlp_mixer<D> declare_mixer(std::type_identity<token_mlp_mixer<D>>, param_layout& l, const std::string& prefix,
                                 index_t, index_t seq, double expansion) {
  token_mlp_mixer<D> m;
  m.mlp = declare_swiglu<D>(l, prefix + "mlp_t.", seq, swiglu_intermediate(seq, expansion));
  return m;
}

template <class D, class Mixer>
struct block : sequence_layer_sizes {
  Mixer mixer;
  swiglu_mlp<D> mlp;

  static block declare(param_layout& l, const std::string& prefix, index_t width, index_t seq, double expansion) {
    block b;
    b.mixer = declare_mixer<D>(std::type_identity<Mixer>{}, l, prefix, width, seq, expansion);
    b.mlp = declare_swiglu<D>(l, prefix + "mlp.", width, swiglu_intermediate(width, expansion));
    return b;
  }

  template <class T>
  struct saved {
    typename Mixer::template saved<T> mix;
    T* h1;  // mixer output [B, S, D]
    typename swiglu_mlp<D>::template saved<T> mlp;
  };
  template <class T>
  void take(saved<T>& s, workspace<D>& ws, const seq_shape<T>& sh) const {
    mixer.take(s.mix, ws, sh);
    s.h1 = ws.template take<T>(sh.dims.tokens() * sh.dims.width);
    mlp.take(s.mlp, ws, rows(sh.dims));
  }

  template <class T>
  void forward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1> in, T* y,
               std::type_identity_t<const saved<T>*> s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    T* h1 = s ? s->h1 : ws.template take<T>(sh.dims.tokens() * sh.dims.width);
    mixer.forward(ctx, p, sh, in, h1, s ? &s->mix : nullptr, ws);
    mlp.forward(ctx, p, rows(sh.dims), {h1}, y, s ? &s->mlp : nullptr, ws);
    ws.rewind(mark);
  }

  template <class T>
  void backward(context_t<D>& ctx, const T* p, const seq_shape<T>& sh, layer_inputs<T, 1> in, const T* y,
                const saved<T>& s, const T* dy, layer_grads<T, 1> din, T* g, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    T* dh1 = ws.template take<T>(sh.dims.tokens() * sh.dims.width);
    mlp.backward(ctx, p, rows(sh.dims), {s.h1}, y, s.mlp, dy, {dh1}, g, ws);
    mixer.backward(ctx, p, sh, in, s.h1, s.mix, dh1, din, g, ws);
    ws.rewind(mark);
  }

 private:
  static row_shape rows(const layer_dims& d) { return {d.tokens(), d.eps}; }
};
static_assert(layer<block<archetype_device, attention_mixer<archetype_device>>, archetype_device, float>);
static_assert(layer<block<archetype_device, token_mlp_mixer<archetype_device>>, archetype_device, float>);

ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// The Tiny Recursive Model (trm-computation.md §1–2): input embedding (prefix from a prefix source,
// scaled token embedding, RoPE or learned positions), one reasoning network applied
// recursively, lm_head and q_head. Compile-time choices: the token mixer (attention or mlp_t),
// the recursion policy and the prefix source (puzzle ids, or the ETRM demo encoder).
//
// One supervision step: T−1 cycles on the no-grad path (nothing stored), then the last cycle,
// whose taped net applications keep their activations in the arena, so memory does not grow
// with T. The carry is detached between steps.
//
// With hierarchical_recursion<N, T> the same class is the Hierarchical Reasoning Model
// (docs/hrm.md): a second net, H_level, makes the answer update, and only the last latent
// update and the last answer update are taped (`hrm_model` below).
#pragma once

#include <etrm/model/puzzle_prefix.hpp>
#include <etrm/model/reasoning_net.hpp>
#include <etrm/recursion/policy.hpp>

#include <cmath>
#include <vector>

ETRM_BEGIN_NAMESPACE

// The recurrent state (z_H = y, z_L = z), each [B, S, D].
template <class T, class D>
struct trm_carry {
  index_t batch = 0;
  buffer<T, D> zh, zl;
  trm_carry() = default;
  trm_carry(index_t B, index_t S, index_t Dm) : batch(B), zh(B * S * Dm), zl(B * S * Dm) {}
};

template <class D, class T, class Mixer, class Recursion = dynamic_recursion,
          template <class, class> class Prefix = puzzle_id_prefix>
class trm_model {
 public:
  using device_type = D;
  using scalar_type = T;
  using prefix_type = Prefix<D, T>;
  using net_type = reasoning_net<D, Mixer>;

  // Extra arguments go to the prefix source (the ETRM encoder's configuration).
  template <class... PrefixArgs>
  trm_model(context_t<D>& ctx, const trm_config& c, PrefixArgs&&... prefix_args)
      : cfg_(checked(c)), cycles_(Recursion::resolve_T(c.H_cycles)), latent_steps_(Recursion::resolve_n(c.L_cycles)),
        prefix_(ctx, layout_, cfg_, std::forward<PrefixArgs>(prefix_args)...) {
    const index_t Dm = cfg_.hidden_size, S = cfg_.full_len();
    const double std = 1.0 / std::sqrt(double(Dm));
    tok_emb_ = layout_.add(token_embedding_name, {cfg_.vocab_size, Dm}, init_spec::trunc_normal(std));
    if (cfg_.pos_encodings == pos_encoding::learned)
      pos_emb_ = layout_.add("model.inner.embed_pos.embedding_weight", {S, Dm}, init_spec::trunc_normal(std));
    net_ = net_type(layout_, "model.inner.L_level.", cfg_.L_layers, Dm, S, cfg_.expansion);
    if constexpr (Recursion::separate_H_level)
      h_net_ = net_type(layout_, "model.inner.H_level.", cfg_.H_layers, Dm, S, cfg_.expansion);
    lm_head_ = layout_.add("model.inner.lm_head.weight", {cfg_.vocab_size, Dm}, init_spec::trunc_normal(std));
    q_w_ = layout_.add("model.inner.q_head.weight", {2, Dm}, init_spec::zeros());
    q_b_ = layout_.add("model.inner.q_head.bias", {2}, init_spec::constant(-5.0));
    if (cfg_.pos_encodings == pos_encoding::rope) rope_ = rope_table<T, D>(ctx, S, cfg_.head_dim(), cfg_.rope_theta);
    if (cfg_.pos_encodings == pos_encoding::rope2d)
      rope_ = rope_table<T, D>::grid(ctx, cfg_.prefix_len(), cfg_.canvas_side(), cfg_.head_dim(), cfg_.rope_theta);
    // H_init / L_init: fixed buffers drawn with std 1 (trm-computation.md §1.7).
    std::vector<T> hi(static_cast<std::size_t>(Dm)), li(hi.size());
    fill_init<T>(hi, init_spec::trunc_normal(1.0), philox_key{0, 0x51});
    fill_init<T>(li, init_spec::trunc_normal(1.0), philox_key{0, 0x52});
    h_init_ = make_buffer<T, D>(ctx, hi);
    l_init_ = make_buffer<T, D>(ctx, li);
  }

  const trm_config& config() const { return cfg_; }
  const param_layout& layout() const { return layout_; }
  prefix_type& prefix() { return prefix_; }
  const prefix_type& prefix() const { return prefix_; }
  T* h_init() { return h_init_.data(); }
  T* l_init() { return l_init_.data(); }
  index_t H_cycles() const { return cycles_; }
  index_t L_cycles() const { return latent_steps_; }
  // Latent updates of the last cycle that are taped (TRM: all n; HRM: the last one).
  index_t taped_latent_updates() const { return Recursion::taped_latent_updates(latent_steps_); }

  seq_shape<T> shape(index_t B) const {
    return {{B, cfg_.full_len(), cfg_.hidden_size, cfg_.num_heads, cfg_.rms_norm_eps}, rope_.view()};
  }

  // Activations of the taped cycle, carved from the arena each step; the vectors keep their
  // capacity across steps.
  struct tape {
    index_t B = 0;
    T* x = nullptr;       // input embedding [B, S, D]
    T* inj = nullptr;     // z_H + x for the latent updates
    std::vector<T*> zl;   // z_L after each taped latent update
    T* zh_out = nullptr;  // new z_H
    std::vector<typename net_type::template saved<T>> apps;  // taped latent updates, then the answer update
    typename prefix_type::saved prefix;
  };

  // Resets the carry rows whose flag is set to H_init / L_init.   flags: [B]
  void reset(context_t<D>& ctx, trm_carry<T, D>& carry, const std::uint8_t* flags) const {
    kernels<D>::reset_rows(ctx, carry.batch, cfg_.full_len(), cfg_.hidden_size, flags, h_init_.data(), l_init_.data(),
                           carry.zh.data(), carry.zl.data());
  }

  // One supervision step. inputs: [B, seq_len]; context: [B, context_width()].
  // Outputs logits [B, S, V] (rows 0..P−1 are the prefix; callers skip them) and q [B, 2]
  // (q_halt, q_continue). t == nullptr: inference, nothing stored.
  void forward(context_t<D>& ctx, const T* p, trm_carry<T, D>& carry, const std::int32_t* inputs,
               const std::int32_t* context, T* logits, T* q, tape* t, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t B = carry.batch, S = cfg_.full_len(), Dm = cfg_.hidden_size, n = B * S * Dm;
    const seq_shape<T> sh = shape(B);
    const std::size_t mark = ws.mark();
    if (t) take(*t, ws, B);
    T* x = t ? t->x : ws.template take<T>(n);
    embed(ctx, p, B, inputs, context, x, t ? &t->prefix : nullptr, ws);
    T* inj = t ? t->inj : ws.template take<T>(n);
    T* zh = carry.zh.data();
    T* zl = carry.zl.data();
    const index_t taped = taped_latent_updates();
    for (index_t c = 0; c + 1 < cycles_; ++c) {
      K::map(ctx, n, ops::add_fn<T>{}, inj, zh, x);
      for (index_t j = 0; j < latent_steps_; ++j) net_.forward(ctx, p, sh, {zl, inj}, zl, nullptr, ws);
      answer_net().forward(ctx, p, sh, {zh, zl}, zh, nullptr, ws);
    }
    K::map(ctx, n, ops::add_fn<T>{}, inj, zh, x);
    for (index_t j = taped; j < latent_steps_; ++j) net_.forward(ctx, p, sh, {zl, inj}, zl, nullptr, ws);  // HRM: untaped
    const T* zl_cur = zl;
    for (index_t j = 0; j < taped; ++j) {
      T* out = t ? t->zl[j] : zl;
      net_.forward(ctx, p, sh, {zl_cur, inj}, out, t ? &t->apps[j] : nullptr, ws);
      zl_cur = out;
    }
    T* zh_out = t ? t->zh_out : zh;
    answer_net().forward(ctx, p, sh, {zh, zl_cur}, zh_out, t ? &t->apps[taped] : nullptr, ws);
    if (t) {  // detached carry for the next step
      device_traits<D>::copy(ctx, zh, zh_out, sizeof(T) * n);
      device_traits<D>::copy(ctx, zl, zl_cur, sizeof(T) * n);
    }
    heads(ctx, p, B, zh_out, logits, q);
    if (!t) ws.rewind(mark);
  }

  // The decoder's input embedding of a batch without a tape: the prefix rows (ETRM: the K
  // context tokens) and the token rows (ETRM with query attention: the cells after reading the
  // demos). Used by the encoder-collapse monitor.   inputs: [B, L]; context: [B, width]; out: [B, S, D]
  void input_embedding(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* inputs,
                       const std::int32_t* context, T* out, workspace<D>& ws) const {
    embed(ctx, p, B, inputs, context, out, nullptr, ws);
  }

  // Backward through the heads and the taped cycle into embeddings and the prefix source.
  // dlogits: [B, S, V] (prefix rows zero); dq: [B, 2]. Gradients accumulate into g.
  void backward(context_t<D>& ctx, const T* p, const tape& t, const std::int32_t* inputs,
                const std::int32_t* context, const T* dlogits, const T* dq, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t B = t.B, S = cfg_.full_len(), Dm = cfg_.hidden_size, V = cfg_.vocab_size, n = B * S * Dm;
    const seq_shape<T> sh = shape(B);
    const std::size_t mark = ws.mark();
    T* dzh = ws.template take<T>(n);
    // lm_head over all rows; q_head reads prefix token 0 of each row (row stride S·D).
    linear<D>{Dm, V}.backward(ctx, p + lm_head_.offset, B * S, t.zh_out, dlogits, dzh, g + lm_head_.offset);
    K::gemm(ctx, true, false, 2, Dm, B, T(1), dq, 2, 0, t.zh_out, S * Dm, 0, T(1), g + q_w_.offset, Dm, 0, 1);
    K::column_sum_add(ctx, B, 2, dq, g + q_b_.offset);
    K::gemm(ctx, false, false, B, Dm, 2, T(1), dq, 2, 0, p + q_w_.offset, Dm, 0, T(1), dzh, S * Dm, 0, 1);

    T* d_in = ws.template take<T>(n);
    T* dzl = ws.template take<T>(n);
    T* dx = ws.template take<T>(n);
    const index_t taped = taped_latent_updates();
    // z_H entering the cycle is detached; only z_L (the injection) carries gradient on.
    answer_net().backward(ctx, p, sh, {}, t.zh_out, t.apps[taped], dzh, {nullptr, d_in}, g, ws);
    std::swap(dzl, d_in);
    device_traits<D>::zero(ctx, dx, sizeof(T) * n);
    for (index_t j = taped; j-- > 0;) {
      net_.backward(ctx, p, sh, {}, t.zl[j], t.apps[j], dzl, {d_in, nullptr}, g, ws);
      K::map(ctx, n, ops::add_fn<T>{}, dx, dx, d_in);  // inj = z_H + x: x gets every latent update's gradient
      std::swap(dzl, d_in);                            // into z_L of the previous update
    }
    embed_backward(ctx, p, B, inputs, context, t.prefix, dx, g, ws);
    ws.rewind(mark);
  }

 private:
  static const trm_config& checked(const trm_config& c) {
    c.validate();
    if (Recursion::separate_H_level && c.H_layers <= 0)
      throw std::invalid_argument("etrm config: hierarchical recursion (HRM) needs H_layers > 0");
    return c;
  }

  const net_type& answer_net() const {
    if constexpr (Recursion::separate_H_level)
      return h_net_;
    else
      return net_;
  }

  void take(tape& t, workspace<D>& ws, index_t B) const {
    const index_t n = B * cfg_.full_len() * cfg_.hidden_size;
    const seq_shape<T> sh = shape(B);
    t.B = B;
    t.x = ws.template take<T>(n);
    t.inj = ws.template take<T>(n);
    t.zh_out = ws.template take<T>(n);
    const index_t taped = taped_latent_updates();
    t.zl.resize(std::size_t(taped));
    for (auto& z : t.zl) z = ws.template take<T>(n);
    t.apps.resize(std::size_t(taped + 1));
    for (index_t j = 0; j < taped; ++j) net_.take(t.apps[j], ws, sh);
    answer_net().take(t.apps[taped], ws, sh);
    prefix_.take(t.prefix, ws, B);
  }

  T embed_scale() const {
    const double s = std::sqrt(double(cfg_.hidden_size));
    return T(cfg_.pos_encodings == pos_encoding::learned ? s * 0.70710678118654752 : s);
  }

  // x[b] = scale · [prefix_b ; tok_emb[inputs_b]] (+ scale · pos with learned positions).
  void embed(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* inputs, const std::int32_t* context, T* x,
             typename prefix_type::saved* ps, workspace<D>& ws) const {
    const index_t S = cfg_.full_len(), Dm = cfg_.hidden_size, P = cfg_.prefix_len();
    // Tokens first: an additive prefix source adds to the token rows.
    kernels<D>::gather_rows(ctx, B, cfg_.seq_len, Dm, inputs, p + tok_emb_.offset, embed_scale(), x + P * Dm, S * Dm);
    prefix_.forward(ctx, p, B, inputs, context, x, S * Dm, embed_scale(), ps, ws);
    if (pos_emb_.size) {
      const std::size_t mark = ws.mark();
      T* ones = ws.template take<T>(B);
      kernels<D>::fill(ctx, B, T(1), ones);
      // x[B, S·D] += ones[B, 1] · (scale · pos)[1, S·D]
      kernels<D>::gemm(ctx, false, false, B, S * Dm, 1, embed_scale(), ones, 1, 0, p + pos_emb_.offset, S * Dm, 0, T(1),
                       x, S * Dm, 0, 1);
      ws.rewind(mark);
    }
  }

  // dx is consumed: a prefix source that rewrote the token rows in forward (ETRM's query
  // attention) maps their gradient back in place before the token embedding takes it.
  void embed_backward(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* inputs,
                      const std::int32_t* context, const typename prefix_type::saved& ps, T* dx, T* g,
                      workspace<D>& ws) const {
    const index_t S = cfg_.full_len(), Dm = cfg_.hidden_size, P = cfg_.prefix_len();
    if (pos_emb_.size) {
      const std::size_t mark = ws.mark();
      T* ones = ws.template take<T>(B);
      kernels<D>::fill(ctx, B, T(1), ones);
      kernels<D>::gemm(ctx, true, false, 1, S * Dm, B, embed_scale(), ones, 1, 0, dx, S * Dm, 0, T(1),
                       g + pos_emb_.offset, S * Dm, 0, 1);
      ws.rewind(mark);
    }
    prefix_.backward(ctx, p, B, inputs, context, ps, dx, S * Dm, embed_scale(), g, ws);
    kernels<D>::scatter_add_rows(ctx, B, cfg_.seq_len, Dm, inputs, dx + P * Dm, S * Dm, embed_scale(), g + tok_emb_.offset);
  }

  void heads(context_t<D>& ctx, const T* p, index_t B, const T* zh, T* logits, T* q) const {
    const index_t S = cfg_.full_len(), Dm = cfg_.hidden_size;
    linear<D>{Dm, cfg_.vocab_size}.forward(ctx, p + lm_head_.offset, B * S, zh, logits);
    // q[B, 2] = zh[:, 0] · W_qᵀ + b
    kernels<D>::copy_2d(ctx, B, 2, p + q_b_.offset, 0, q, 2, T(1));
    kernels<D>::gemm(ctx, false, true, B, 2, Dm, T(1), zh, S * Dm, 0, p + q_w_.offset, Dm, 0, T(1), q, 2, 0, 1);
  }

  trm_config cfg_;
  index_t cycles_, latent_steps_;
  param_layout layout_;
  prefix_type prefix_;
  net_type net_, h_net_;  // L_level; H_level with hierarchical recursion only
  param_ref tok_emb_, pos_emb_, lm_head_, q_w_, q_b_;
  rope_table<T, D> rope_;
  buffer<T, D> h_init_, l_init_;
};

// The Hierarchical Reasoning Model (docs/hrm.md): TRM's layers, embeddings, heads and ACT with two
// nets and the one-step gradient. With the demo encoder as Prefix it reads demonstrations.
template <class D, class T, class Recursion = dynamic_hierarchical_recursion,
          template <class, class> class Prefix = puzzle_id_prefix>
using hrm_model = trm_model<D, T, attention_mixer<D>, Recursion, Prefix>;

ETRM_END_NAMESPACE

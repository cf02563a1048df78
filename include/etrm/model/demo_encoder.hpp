// SPDX-License-Identifier: Apache-2.0
// ETRM's demonstration encoder: a prefix source that reads a task's demonstration pairs in
// place of TRM's per-puzzle embedding, so the model has no per-task parameters and can run on
// tasks it never saw (docs/demo-encoders.md §6).
//
// Per row the context holds up to `max_demos` pairs, each an input and an output canvas of
// side G (grid cropped to content with an EOS border, PAD beyond, not a 30×30 canvas):
//   1. every pair is a sequence of 2·G² tokens: token embedding + row + column + in/out segment
//      embeddings (learned 2-D positions) + (aligned_cells) an embedding of the token at the
//      same (row, column) of the pair's other grid, then `encoder_layers` transformer blocks
//      per pair. The aligned cell makes "colour a became colour b here" a feature of one token
//      instead of a relation the blocks must first learn to find by attention. (neighbour_cells)
//      Every token, and every query cell in 4., also embeds each of its 8 neighbours in the same
//      grid (one table per direction, PAD beyond the canvas), so that the lookup can match a
//      cell by its local pattern, not only by its colour and position. (neighbour_rays) The 8
//      "neighbours" are then what the cell sees along each direction: the first cell that is not
//      black, or the grid's border (data/cell_neighbours.hpp), so rules that relate a cell to colours
//      further along its row, column or diagonal (lines, joins, enclosures) become local too.
//      (neighbour_relations) Each of the 8 then says only how that neighbour relates to the cell:
//      its own token, black, another colour, the border or beyond (data::neighbour_relation), a
//      pattern that reads the same in every palette.
//      (search_alignment) Every output token, and every query cell in 4., also embeds the
//      input cell that lands on it under the dihedral transform and shift that best explain the
//      task's demos (data/cell_alignment.hpp, searched per row on the device): for a rule that
//      moves cells, "the cell this one comes from" then is a feature, as the aligned cell is for
//      rules that do not, and a query cell can read its answer off its own transported input;
//      (candidate_cells, with search_alignment) they also embed that transported cell recoloured
//      by the colour map the demos support under the same alignment (a colour the demos never
//      show is kept, in a row of its own): on the query the answer of the best "move, then
//      recolour" hypothesis, on a demo output whether that hypothesis holds there;
//      (pattern_cells) every query cell, and every demo output token, also embeds what the
//      demos' input cells that look like it became (data/cell_patterns.hpp: the same token or
//      class and the same relations of the adjacent cells or of the rays, or the same role of
//      the colour, or lying between two cells of one colour, under the key the demos support
//      best; a demo's output tokens read the other demos' answer), and whether that key
//      answers every demo cell right: a local rule read off the demos that a query cell of a
//      colour no demo shows can still follow;
//   2. an aggregation policy turns all pairs into K context tokens (K = puzzle_emb_len):
//      cross_attention_aggregation (default): K learned queries cross-attend to every
//      non-PAD token of every present pair, then `latent_layers` self-attention blocks;
//      per_pair_mean_aggregation: the same queries attend to each pair alone and the K latents
//      are averaged over the present pairs (order-invariant, LPN-style);
//   3. an injection policy places them: prefix_injection writes the K tokens where TRM's
//      puzzle embedding goes; additive_injection adds a projection of their mean to every token;
//   4. (query_attention) the query's own cells cross-attend to every demo token and the result
//      replaces their embeddings, so a cell can look up what cells like it became in the demos
//      (a colour map, say) instead of decoding it from K task-wide tokens. The K tokens stay.
//      (raw_lookup) The keys are then every demo token twice: as embedded in 1. (before the pair
//      blocks) and after them, so a cell can match a demo cell by the same tables that embed it,
//      a match that does not depend on the rule, or by what the blocks made of it;
//   5. (readout_weight > 0, training only) a linear head reads each query cell's answer from
//      what the cell read in the demos, and its cross-entropy joins the loss: a one-layer path
//      from the labels to the demo lookup, which otherwise learns only through the recursion.
// Nothing is cached across supervision steps: the trainer calls forward in every step, so
// gradients reach the encoder at every step.
//
// Context row layout (int32): [max_demos, 2, G, G] tokens, then [max_demos] presence flags
// (1/0), then [max_demos] copies of the number of present demos.
#pragma once

#include <etrm/data/cell_alignment.hpp>
#include <etrm/data/cell_neighbours.hpp>
#include <etrm/data/cell_patterns.hpp>
#include <etrm/layers/block.hpp>
#include <etrm/layers/cross_attention.hpp>
#include <etrm/model/config.hpp>
#include <etrm/model/priors.hpp>

#include <utility>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct encoder_config {
  index_t grid_side = 11;  // G: canvas side of one demo grid, EOS border included
  index_t max_demos = 4;
  index_t encoder_layers = 2;
  index_t latent_layers = 1;
  bool aligned_cells = true;    // each token also embeds the same cell of the other grid of its pair
  bool neighbour_cells = false;  // each token (and query cell) also embeds its 8 neighbours
  bool neighbour_rays = false;   // with neighbour_cells: the first non-black cell along each direction
  bool neighbour_relations = false;  // with neighbour_cells: each neighbour's relation to the cell, not its colour
  bool query_attention = true;  // the query cells read the demo tokens by cross-attention
  // search_alignment, candidate_cells and pattern_cells are priors (model/priors.hpp): searches
  // over each task's demos outside the network, off in the learned ETRM.
  // With query_attention: output tokens and query cells embed the input cell they come from under
  // the searched dihedral transform and shift (see 1. above).
  bool search_alignment = false;
  // With search_alignment: they also embed that cell recoloured by the demos' colour map (see 1.).
  bool candidate_cells = false;
  // With query_attention: query cells and demo outputs also embed the answer of the demos'
  // look-alike cells (see 1.).
  bool pattern_cells = false;
  // With query_attention: the query cross-attention starts as a matcher (k_proj = q_proj) and the
  // demo token table as a copy of the model's, so from the first step a query cell attends most
  // to demo cells of its own colour and position, which carry their pair's other grid. Off by
  // default: it showed no effect on the training plateau (docs/experiments/matching-init.md).
  bool matching_init = false;
  // With query_attention: weight of the readout loss (see 5. above; 0: no readout head).
  double readout_weight = 0;
  // With query_attention and encoder_layers > 0: the query cells also read the demo tokens as
  // embedded, before the pair blocks (see 4. above).
  bool raw_lookup = false;

  bool reads_out() const { return query_attention && readout_weight > 0; }
  index_t pair_len() const { return 2 * grid_side * grid_side; }
  index_t context_width() const { return max_demos * (pair_len() + 2); }
};

inline void to_json(nlohmann::json& j, const encoder_config& e) {
  j = {{"grid_side", e.grid_side}, {"max_demos", e.max_demos}, {"encoder_layers", e.encoder_layers},
       {"latent_layers", e.latent_layers}, {"aligned_cells", e.aligned_cells}, {"neighbour_cells", e.neighbour_cells},
       {"neighbour_rays", e.neighbour_rays}, {"neighbour_relations", e.neighbour_relations},
       {"query_attention", e.query_attention}, {"search_alignment", e.search_alignment},
       {"candidate_cells", e.candidate_cells}, {"pattern_cells", e.pattern_cells},
       {"matching_init", e.matching_init},
       {"readout_weight", e.readout_weight}, {"raw_lookup", e.raw_lookup}};
}
inline void from_json(const nlohmann::json& j, encoder_config& e) {
  read_json_field(j, "grid_side", e.grid_side);
  read_json_field(j, "max_demos", e.max_demos);
  read_json_field(j, "encoder_layers", e.encoder_layers);
  read_json_field(j, "latent_layers", e.latent_layers);
  read_json_field(j, "aligned_cells", e.aligned_cells);
  read_json_field(j, "neighbour_cells", e.neighbour_cells);
  read_json_field(j, "neighbour_rays", e.neighbour_rays);
  read_json_field(j, "neighbour_relations", e.neighbour_relations);
  read_json_field(j, "query_attention", e.query_attention);
  read_json_field(j, "search_alignment", e.search_alignment);
  read_json_field(j, "candidate_cells", e.candidate_cells);
  read_json_field(j, "pattern_cells", e.pattern_cells);
  read_json_field(j, "matching_init", e.matching_init);
  read_json_field(j, "readout_weight", e.readout_weight);
  read_json_field(j, "raw_lookup", e.raw_lookup);
}

struct cross_attention_aggregation {
  static constexpr const char* name = "cross_attention";
};
struct per_pair_mean_aggregation {
  static constexpr const char* name = "per_pair_mean";
};
struct prefix_injection {
  static constexpr const char* name = "prefix";
};
struct additive_injection {
  static constexpr const char* name = "additive";
};

template <class T>
struct pad_mask_fn {  // PAD (0) keys are masked out of the aggregation
  ETRM_HD T operator()(std::int32_t token) const { return token == 0 ? T(-1e9) : T(0); }
};
template <class T>
struct mean_weight_fn {  // weight of a pair in the mean: present / count
  ETRM_HD T operator()(std::int32_t present, std::int32_t count) const {
    return present ? T(1) / T(count > 0 ? count : 1) : T(0);
  }
};

// The ids the neighbour tables read for every cell of N stacked G×G grids: the 8 adjacent cells,
// or what each cell sees along the 8 directions, or their relations to the cell
// (data/cell_neighbours.hpp), on the backend's device.   grids: [N, G, G]; out: [8, N, G, G]
template <class D>
void neighbour_ids(context_t<D>& ctx, index_t N, index_t G, data::neighbour_kind kind, const std::int32_t* grids,
                   std::int32_t* out) {
  kernels<D>::for_each(ctx, 8 * N * G * G, data::neighbour_tokens{grids, N, int(G), kind, out});
}

// (search_alignment) call(b), for row b of a batch of context rows: the alignment its present
// demos support (data::search_alignment), then the transported input of each present demo into
// the output half of its pair in `out` (PAD elsewhere) and of the query into `qout` (when
// `queries` is given); with `cand`, the same recoloured by the demos' colour map under that
// alignment into `cand` and `qcand`. One row per call, so that a backend's for_each runs the
// search where the rows are.
struct align_demo_rows {
  const std::int32_t* context;  // [B, W]: [M, Lp] demo tokens, then presence flags
  const std::int32_t* queries;  // [B, L], or null
  index_t W, M, Lp, L;
  int G, V;  // canvas side; vocabulary (≤ data::max_alignment_vocab), also the `outside` token
  std::int32_t* out;   // [B, M·Lp]
  std::int32_t* qout;  // [B, L]
  std::int32_t* cand;  // [B, M·Lp], or null: no recolouring
  std::int32_t* qcand;  // [B, L]

  ETRM_HD void operator()(index_t b) const {
    const auto outside = std::int32_t(V);
    std::int32_t map[data::max_alignment_vocab];
    const std::int32_t* row = context + b * W;
    const data::cell_alignment h = data::search_alignment(row, row + M * Lp, int(M), G, V, cand ? map : nullptr);
    for (index_t m = 0; m < M; ++m) {
      std::int32_t* t = out + (b * M + m) * Lp;
      for (index_t i = 0; i < Lp; ++i) t[i] = 0;
      if (row[M * Lp + m]) data::transport_canvas(row + m * Lp, G, h, outside, t + Lp / 2);
      if (!cand) continue;
      std::int32_t* c = cand + (b * M + m) * Lp;
      for (index_t i = 0; i < Lp; ++i) c[i] = t[i];
      data::recolour_canvas(c + Lp / 2, G, outside, map);
    }
    if (!queries) return;
    std::int32_t* q = qout + b * L;
    data::transport_canvas(queries + b * L, G, h, outside, q);
    if (!cand) return;
    for (index_t i = 0; i < L; ++i) qcand[b * L + i] = q[i];
    data::recolour_canvas(qcand + b * L, G, outside, map);
  }
};

// (pattern_cells) call(b), for row b of a batch of context rows: each demo output token gets the
// answer the row's other demos give for the input cell at its place (data::pattern_demos), its
// input tokens none (V), and the row's key ranking is stored; with `queries`, each query cell
// gets the answer of all the row's demos under the stored ranking instead. Answers are ids of
// data::pattern_answer (the token and whether its key is sure). One row per call, so that a
// backend's for_each runs it where the rows are.
struct pattern_rows {
  const std::int32_t* tokens;      // [B, M·Lp]: the rows' demo tokens packed
  const std::int32_t* present;     // [B, M]: presence flags
  const std::int32_t* neighbours;  // [17, B·M·Lp]: the tokens' relations (data::pattern_neighbours)
  const std::int32_t* queries;     // [B, L], or null: the demo side
  const std::int32_t* query_neighbours;  // [17, B·L]
  std::int32_t* ranking;           // [B, data::pattern_ranking_ints]: written on the demo side, read with queries
  index_t B, M, Lp, L;
  int G, V;
  std::int32_t* out;  // [B, M·Lp], or [B, L] with queries

  ETRM_HD void operator()(index_t b) const {
    const index_t n = B * M * Lp, half = Lp / 2;
    data::pattern_demos demos{tokens + b * M * Lp, present + b * M, neighbours + b * M * Lp, n, int(M), G, V};
    std::int32_t* row_ranking = ranking + b * data::pattern_ranking_ints;
    if (queries) {
      demos.load(row_ranking);
      for (index_t i = 0; i < L; ++i)
        out[b * L + i] = demos.answer(queries[b * L + i], {query_neighbours + b * L + i, B * L}, -1).id(V);
      return;
    }
    demos.find_voters().rank_keys().save(row_ranking);
    for (index_t m = 0; m < M; ++m) {
      const index_t first = (b * M + m) * Lp;
      for (index_t i = 0; i < half; ++i) {
        out[first + i] = V;
        out[first + half + i] =
            demos.votes(int(m)) ? demos.answer(tokens[first + i], {neighbours + first + i, n}, int(m)).id(V) : V;
      }
    }
  }
};

template <class Aggregation = cross_attention_aggregation, class Injection = prefix_injection>
struct demo_encoder_policy {
  template <class D, class T>
  class type;
};

template <class Aggregation, class Injection>
template <class D, class T>
class demo_encoder_policy<Aggregation, Injection>::type {
  static constexpr bool per_pair = std::is_same_v<Aggregation, per_pair_mean_aggregation>;
  static constexpr bool additive = std::is_same_v<Injection, additive_injection>;
  using block_t = block<D, attention_mixer<D>>;

 public:
  type(context_t<D>& ctx, param_layout& l, const trm_config& c, const encoder_config& e = {})
      : cfg_(e),
        context_tokens_(c.prefix_len()),
        Dm_(c.hidden_size),
        H_(c.num_heads),
        V_(c.vocab_size),
        eps_(c.rms_norm_eps),
        P_total_(c.prefix_len() * c.hidden_size),
        S_(c.full_len()),
        expansion_(c.expansion) {
    if (e.grid_side <= 0 || e.grid_side > 64 || e.max_demos <= 0 || e.max_demos > 64 || e.encoder_layers < 0 ||
        e.encoder_layers > trm_config::max_depth || e.latent_layers < 0 || e.latent_layers > trm_config::max_depth)
      throw std::invalid_argument("etrm encoder: grid_side and max_demos must be in [1, 64], the layer counts in [0, " +
                                  std::to_string(trm_config::max_depth) + "]");
    const std::string pre = "model.inner.encoder.";
    const auto group = l.in_group(param_group::encoder);
    const index_t G = e.grid_side, Dm = Dm_;
    const init_spec emb = init_spec::trunc_normal(1.0 / std::sqrt(double(Dm)));
    const bool matching = e.query_attention && e.matching_init;
    tok_ = l.add(pre + "embed_tokens.weight", {c.vocab_size, Dm}, matching ? init_spec::copy_of(token_embedding_name) : emb);
    row_ = l.add(pre + "embed_row.weight", {G, Dm}, emb);
    col_ = l.add(pre + "embed_col.weight", {G, Dm}, emb);
    seg_ = l.add(pre + "embed_segment.weight", {2, Dm}, emb);
    if (e.aligned_cells) aligned_ = l.add(pre + "embed_aligned.weight", {c.vocab_size, Dm}, emb);
    if (e.search_alignment) transported_ = l.add(pre + "embed_transported.weight", {c.vocab_size + 1, Dm}, emb);
    if (e.candidate_cells) candidate_ = l.add(pre + "embed_candidate.weight", {2 * c.vocab_size, Dm}, emb);
    if (e.pattern_cells)
      pattern_ = l.add(pre + "embed_pattern.weight", {data::pattern_answer_ids(c.vocab_size), Dm}, emb);
    // Zero: the 8 tables start silent, so training starts as without them (drawn like the others,
    // their sum drowned each cell's own colour and slowed the lookup; docs/experiments/neighbour-rays.md).
    if (e.neighbour_cells)
      neighbours_ = l.add(pre + "embed_neighbours.weight", {8, neighbour_vocab(), Dm}, init_spec::zeros());
    for (index_t i = 0; i < e.encoder_layers; ++i)
      pair_blocks_.push_back(
          block_t::declare(l, pre + "pair_layers." + std::to_string(i) + ".", Dm, e.pair_len(), c.expansion));
    queries_ = l.add(pre + "latent_queries", {context_tokens_, Dm}, init_spec::trunc_normal(1.0));
    cross_ = cross_attention<D>::declare(l, pre + "cross_attn.", Dm);
    cross_mlp_ = declare_swiglu<D>(l, pre + "cross_mlp.", Dm, trm_config::swiglu_intermediate(Dm, c.expansion));
    for (index_t i = 0; i < e.latent_layers; ++i)
      latent_blocks_.push_back(
          block_t::declare(l, pre + "latent_layers." + std::to_string(i) + ".", Dm, context_tokens_, c.expansion));
    if (additive) inject_ = l.add(pre + "inject_proj.weight", {Dm, Dm}, emb);
    if (e.query_attention) query_cross_ = cross_attention<D>::declare(l, pre + "query_cross_attn.", Dm, matching);
    if (e.readout_weight < 0) throw std::invalid_argument("etrm encoder: readout_weight must not be negative");
    if (e.readout_weight > 0 && !e.query_attention)
      throw std::invalid_argument("etrm encoder: readout_weight needs query_attention");
    if (e.search_alignment && !e.query_attention)
      throw std::invalid_argument("etrm encoder: search_alignment needs query_attention");
    if (e.search_alignment && c.vocab_size > data::max_alignment_vocab)
      throw std::invalid_argument("etrm encoder: search_alignment needs a vocabulary of at most 32 tokens");
    if (e.candidate_cells && !e.search_alignment)
      throw std::invalid_argument("etrm encoder: candidate_cells needs search_alignment");
    if (e.pattern_cells && !e.query_attention)
      throw std::invalid_argument("etrm encoder: pattern_cells needs query_attention");
    if (e.pattern_cells && c.vocab_size > data::max_alignment_vocab)
      throw std::invalid_argument("etrm encoder: pattern_cells needs a vocabulary of at most 32 tokens");
    if (e.neighbour_rays && !e.neighbour_cells)
      throw std::invalid_argument("etrm encoder: neighbour_rays needs neighbour_cells");
    if (e.neighbour_relations && !e.neighbour_cells)
      throw std::invalid_argument("etrm encoder: neighbour_relations needs neighbour_cells");
    if (e.raw_lookup && (!e.query_attention || e.encoder_layers == 0))
      throw std::invalid_argument("etrm encoder: raw_lookup needs query_attention and encoder_layers > 0");
    if (e.reads_out()) readout_ = l.add(pre + "readout_head.weight", {c.vocab_size, Dm}, emb);
    // Position ids of one pair: (segment, row, column) of each of its 2·G² tokens.
    std::vector<std::int32_t> r, cc, s;
    for (index_t seg = 0; seg < 2; ++seg)
      for (index_t i = 0; i < G; ++i)
        for (index_t j = 0; j < G; ++j) {
          r.push_back(std::int32_t(i));
          cc.push_back(std::int32_t(j));
          s.push_back(std::int32_t(seg));
        }
    row_ids_ = make_buffer<std::int32_t, D>(ctx, r);
    col_ids_ = make_buffer<std::int32_t, D>(ctx, cc);
    seg_ids_ = make_buffer<std::int32_t, D>(ctx, s);
  }

  const encoder_config& encoder() const { return cfg_; }
  index_t context_width() const { return cfg_.context_width(); }

  // Test-time adaptation hook (train/context_adaptation.hpp). While set, offset[b] ([B, K·D],
  // device) is added to row b's K context tokens before injection, and backward accumulates
  // ∂L/∂offset into grad ([B, K·D], device; may be null). Both null: the plain encoder.
  void set_context_offset(const T* offset, T* grad) {
    offset_ = offset;
    offset_grad_ = grad;
  }

  struct saved {
    std::int32_t* tokens = nullptr;    // the rows' demo tokens packed: [B, M·Lp]
    std::int32_t* aligned = nullptr;   // the same with each pair's two grids swapped: [B, M·Lp]
    std::int32_t* neighbours = nullptr;  // (neighbour_cells) each token's 8 neighbours or rays: [8, B·M·Lp]
    std::int32_t* query_neighbours = nullptr;  // and each query cell's: [8, B·L]
    std::int32_t* transported = nullptr;  // (search_alignment) output tokens' source cells, PAD on inputs: [B, M·Lp]
    std::int32_t* query_transported = nullptr;  // and each query cell's: [B, L]
    std::int32_t* candidate = nullptr;  // (candidate_cells) the same recoloured: [B, M·Lp]
    std::int32_t* query_candidate = nullptr;  // [B, L]
    std::int32_t* pattern = nullptr;  // (pattern_cells) the look-alikes' answer ids, V on inputs: [B, M·Lp]
    std::int32_t* query_pattern = nullptr;  // [B, L]
    std::int32_t* pattern_neighbours = nullptr;  // and the relations they read: [17, B·M·Lp]
    std::int32_t* query_pattern_neighbours = nullptr;  // [17, B·L]
    std::int32_t* pattern_ranking = nullptr;  // and the rows' key rankings: [B, data::pattern_ranking_ints]
    std::int32_t* flags = nullptr;     // presence flags then counts: [2, B, M]
    T* pos = nullptr;                  // [Lp, D]
    T* x0 = nullptr;                   // pair embeddings [B·M, Lp, D]
    std::vector<T*> pair_out;          // block outputs, one per encoder layer
    std::vector<typename block_t::template saved<T>> pair_saved;
    T* key_bias = nullptr;             // [B·M or B, keys]
    T* lat_in = nullptr;               // broadcast queries [rows, K, D]
    T* cross_out = nullptr;            // [rows, K, D]
    typename cross_attention<D>::template saved<T> cross;
    T* mlp_out = nullptr;              // [rows, K, D]
    typename swiglu_mlp<D>::template saved<T> mlp;
    T* weights = nullptr;              // per-pair mean weights [B, M]
    T* mean = nullptr;                 // [B, K, D]
    std::vector<T*> latent_out;
    std::vector<typename block_t::template saved<T>> latent_saved;
    T* pooled = nullptr;               // additive injection: mean over K [B, D]
    T* query_in = nullptr;             // query attention: the cells (+ positions) [B, L, D]
    T* query_out = nullptr;            // and what replaces them [B, L, D]
    T* lookup = nullptr;               // (raw_lookup) the keys: [B, 2·M·Lp, D], as embedded then after the blocks
    T* lookup_bias = nullptr;          // and their mask [B, 2·M·Lp]
    typename cross_attention<D>::template saved<T> query_cross;
    T* readout_grad = nullptr;         // ∂(readout loss)/∂query_out [B, L, D], set by readout_loss
  };
  void take(saved& s, workspace<D>& ws, index_t B) const {
    const index_t M = cfg_.max_demos, Lp = cfg_.pair_len(), Dm = Dm_, rows = per_pair ? B * M : B;
    s.tokens = ws.template take<std::int32_t>(B * M * Lp);
    if (cfg_.aligned_cells) s.aligned = ws.template take<std::int32_t>(B * M * Lp);
    if (cfg_.neighbour_cells) {
      s.neighbours = ws.template take<std::int32_t>(8 * B * M * Lp);
      s.query_neighbours = ws.template take<std::int32_t>(8 * B * cells());
    }
    if (cfg_.search_alignment) {
      s.transported = ws.template take<std::int32_t>(B * M * Lp);
      s.query_transported = ws.template take<std::int32_t>(B * cells());
    }
    if (cfg_.candidate_cells) {
      s.candidate = ws.template take<std::int32_t>(B * M * Lp);
      s.query_candidate = ws.template take<std::int32_t>(B * cells());
    }
    if (cfg_.pattern_cells) {
      s.pattern = ws.template take<std::int32_t>(B * M * Lp);
      s.query_pattern = ws.template take<std::int32_t>(B * cells());
      s.pattern_neighbours = ws.template take<std::int32_t>(data::pattern_relations * B * M * Lp);
      s.query_pattern_neighbours = ws.template take<std::int32_t>(data::pattern_relations * B * cells());
      s.pattern_ranking = ws.template take<std::int32_t>(data::pattern_ranking_ints * B);
    }
    s.flags = ws.template take<std::int32_t>(2 * B * M);
    s.pos = ws.template take<T>(Lp * Dm);
    s.x0 = ws.template take<T>(B * M * Lp * Dm);
    const seq_shape<T> pd = pair_shape(B);
    s.pair_out.resize(pair_blocks_.size());
    s.pair_saved.resize(pair_blocks_.size());
    for (std::size_t i = 0; i < pair_blocks_.size(); ++i) {
      s.pair_out[i] = ws.template take<T>(B * M * Lp * Dm);
      pair_blocks_[i].take(s.pair_saved[i], ws, pd);
    }
    s.key_bias = ws.template take<T>(B * M * Lp);
    s.lat_in = ws.template take<T>(rows * context_tokens_ * Dm);
    s.cross_out = ws.template take<T>(rows * context_tokens_ * Dm);
    cross_.take(s.cross, ws, aggregation_shape(B, s));
    s.mlp_out = ws.template take<T>(rows * context_tokens_ * Dm);
    cross_mlp_.take(s.mlp, ws, row_shape{rows * context_tokens_, eps_});
    s.weights = ws.template take<T>(B * M);
    s.mean = ws.template take<T>(B * context_tokens_ * Dm);
    const seq_shape<T> ld = latent_shape(B);
    s.latent_out.resize(latent_blocks_.size());
    s.latent_saved.resize(latent_blocks_.size());
    for (std::size_t i = 0; i < latent_blocks_.size(); ++i) {
      s.latent_out[i] = ws.template take<T>(B * context_tokens_ * Dm);
      latent_blocks_[i].take(s.latent_saved[i], ws, ld);
    }
    s.pooled = ws.template take<T>(B * Dm);
    if (cfg_.query_attention) {
      s.query_in = ws.template take<T>(B * cells() * Dm);
      s.query_out = ws.template take<T>(B * cells() * Dm);
      query_cross_.take(s.query_cross, ws, cross_shape<T>{query_dims(B), nullptr});
    }
    if (cfg_.raw_lookup) {
      s.lookup = ws.template take<T>(B * lookup_keys() * Dm);
      s.lookup_bias = ws.template take<T>(B * lookup_keys());
    }
    s.readout_grad = nullptr;
  }

  // Writes the context into x (row b at b·x_stride): the K tokens into the prefix rows
  // (prefix_injection), or zeros there plus a projection of their mean added to every token
  // row (additive_injection; x's token rows must already hold the token embeddings). The
  // encoder output is RMS-normalised, so `scale` (TRM's √D for table embeddings) is not applied.
  // inputs: the query's tokens [B, L] (may be null when only the prefix rows are wanted).
  void forward(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* inputs, const std::int32_t* context, T* x,
               index_t x_stride, T, saved* s, workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    saved tmp;
    if (!s) {
      take(tmp, ws, B);
      s = &tmp;
    }
    if (cfg_.search_alignment) align_cells(ctx, B, context, inputs, *s);
    encode(ctx, p, B, context, *s, ws);
    const T* ctx_tokens = latent_blocks_.empty() ? s->mean : s->latent_out.back();
    if (offset_) {
      T* shifted = ws.template take<T>(B * context_tokens_ * Dm_);
      kernels<D>::map(ctx, B * context_tokens_ * Dm_, ops::add_fn<T>{}, shifted, ctx_tokens, offset_);
      ctx_tokens = shifted;
    }
    if (cfg_.query_attention && inputs) read_demos(ctx, p, B, inputs, *s, x, x_stride, ws);
    inject(ctx, p, B, ctx_tokens, *s, x, x_stride, ws);
    if (s == &tmp) ws.rewind(mark);
  }

  // With query_attention, dx's token rows are rewritten: on return they hold the gradient with
  // respect to the token embeddings the cells had before they read the demos.
  void backward(context_t<D>& ctx, const T* p, index_t B, const std::int32_t*, const std::int32_t* context,
                const saved& s, T* dx, index_t x_stride, T, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const std::size_t mark = ws.mark();
    const index_t M = cfg_.max_demos, Lp = cfg_.pair_len(), Dm = Dm_, KD = context_tokens_ * Dm;
    const index_t rows = per_pair ? B * M : B;
    T* dctx = ws.template take<T>(B * KD);
    inject_backward(ctx, p, B, s, dx, x_stride, dctx, g, ws);
    if (offset_grad_) K::map(ctx, B * KD, ops::add_fn<T>{}, offset_grad_, offset_grad_, dctx);
    // Latent self-attention blocks, last to first.
    T* buf = ws.template take<T>(B * KD);
    const seq_shape<T> ld = latent_shape(B);
    for (std::size_t i = latent_blocks_.size(); i-- > 0;) {
      const T* in = i == 0 ? s.mean : s.latent_out[i - 1];
      latent_blocks_[i].backward(ctx, p, ld, {in}, s.latent_out[i], s.latent_saved[i], dctx, {buf}, g, ws);
      std::swap(dctx, buf);
    }
    // dctx is now ∂/∂mean. Per-pair mean: spread back to each pair's latents by its weight.
    T* dmlp = ws.template take<T>(rows * KD);
    if (per_pair)
      K::gemm(ctx, true, false, M, KD, 1, T(1), s.weights, M, M, dctx, KD, KD, T(0), dmlp, KD, M * KD, B);
    else
      K::map(ctx, B * KD, ops::copy_fn<T>{}, dmlp, dctx);
    T* dcross = ws.template take<T>(rows * KD);
    cross_mlp_.backward(ctx, p, row_shape{rows * context_tokens_, eps_}, {s.cross_out}, s.mlp_out, s.mlp, dmlp,
                        {dcross}, g, ws);
    T* dlat = ws.template take<T>(rows * KD);
    T* dkv = ws.template take<T>(B * M * Lp * Dm);
    const T* demo_tokens = s.pair_out.empty() ? s.x0 : s.pair_out.back();
    cross_.backward(ctx, p, aggregation_shape(B, s), {s.lat_in, demo_tokens}, s.cross_out, s.cross, dcross, {dlat, dkv},
                    g, ws);
    T* dquery = nullptr;  // ∂/∂query_in [B, L, D]
    T* draw = cfg_.raw_lookup ? ws.template take<T>(B * M * Lp * Dm) : nullptr;  // ∂/∂x0 from the raw keys
    if (cfg_.query_attention) dquery = read_demos_backward(ctx, p, B, s, demo_tokens, dx, x_stride, dkv, draw, g, ws);
    K::column_sum_add(ctx, rows, KD, dlat, g + queries_.offset);  // the queries are shared by every row
    // Pair blocks, last to first, then the embeddings.
    T* dbuf = ws.template take<T>(B * M * Lp * Dm);
    const seq_shape<T> pd = pair_shape(B);
    for (std::size_t i = pair_blocks_.size(); i-- > 0;) {
      const T* in = i == 0 ? s.x0 : s.pair_out[i - 1];
      pair_blocks_[i].backward(ctx, p, pd, {in}, s.pair_out[i], s.pair_saved[i], dkv, {dbuf}, g, ws);
      std::swap(dkv, dbuf);
    }
    if (draw) K::map(ctx, B * M * Lp * Dm, ops::add_fn<T>{}, dkv, dkv, draw);  // dkv is ∂/∂x0 now
    const T scale = embed_scale();
    K::scatter_add_rows(ctx, 1, B * M * Lp, Dm, s.tokens, dkv, 0, scale, g + tok_.offset);
    if (cfg_.aligned_cells) K::scatter_add_rows(ctx, 1, B * M * Lp, Dm, s.aligned, dkv, 0, scale, g + aligned_.offset);
    if (cfg_.search_alignment) {
      K::scatter_add_rows(ctx, 1, B * M * Lp, Dm, s.transported, dkv, 0, scale, g + transported_.offset);
      if (dquery && query_has_positions())
        K::scatter_add_rows(ctx, 1, B * cells(), Dm, s.query_transported, dquery, 0, scale, g + transported_.offset);
    }
    if (cfg_.candidate_cells) {
      K::scatter_add_rows(ctx, 1, B * M * Lp, Dm, s.candidate, dkv, 0, scale, g + candidate_.offset);
      if (dquery && query_has_positions())
        K::scatter_add_rows(ctx, 1, B * cells(), Dm, s.query_candidate, dquery, 0, scale, g + candidate_.offset);
    }
    if (cfg_.pattern_cells) {
      K::scatter_add_rows(ctx, 1, B * M * Lp, Dm, s.pattern, dkv, 0, scale, g + pattern_.offset);
      if (dquery && query_has_positions())
        K::scatter_add_rows(ctx, 1, B * cells(), Dm, s.query_pattern, dquery, 0, scale, g + pattern_.offset);
    }
    if (cfg_.neighbour_cells) {
      neighbours_backward(ctx, B * M * Lp, s.neighbours, dkv, g);
      if (dquery && query_has_positions()) neighbours_backward(ctx, B * cells(), s.query_neighbours, dquery, g);
    }
    T* dpos = ws.template take<T>(Lp * Dm);
    T* ones = ws.template take<T>(B * M);
    K::fill(ctx, B * M, T(1), ones);
    K::gemm(ctx, true, false, 1, Lp * Dm, B * M, scale, ones, 1, 0, dkv, Lp * Dm, 0, T(0), dpos, Lp * Dm, 0, 1);
    if (dquery && query_has_positions())  // the query cells wore the input grid's positions
      K::gemm(ctx, true, false, 1, cells() * Dm, B, scale, ones, 1, 0, dquery, cells() * Dm, 0, T(1), dpos, Lp * Dm, 0, 1);
    K::scatter_add_rows(ctx, 1, Lp, Dm, row_ids_.data(), dpos, 0, T(1), g + row_.offset);
    K::scatter_add_rows(ctx, 1, Lp, Dm, col_ids_.data(), dpos, 0, T(1), g + col_.offset);
    K::scatter_add_rows(ctx, 1, Lp, Dm, seg_ids_.data(), dpos, 0, T(1), g + seg_.offset);
    ws.rewind(mark);
  }

  // The readout loss of a taped forward (reads_out() only; else null): cross-entropy of
  // query_out · W_readoutᵀ against labels [B, L] (−100 ignored), mean over each row's cells,
  // its gradient scaled by grad_scale · readout_weight. Accumulates ∂/∂W_readout into g and
  // keeps ∂/∂query_out in s for backward. Returns each row's loss, unweighted ([B], arena).
  const T* readout_loss(context_t<D>& ctx, const T* p, index_t B, saved& s, const std::int32_t* labels,
                        ops::loss_kind kind, T grad_scale, T* g, workspace<D>& ws) const {
    if (!cfg_.reads_out()) return nullptr;
    using K = kernels<D>;
    const index_t L = cells(), V = V_, N = B * L;
    const linear<D> head{Dm_, V};
    s.readout_grad = ws.template take<T>(N * Dm_);
    T* loss = ws.template take<T>(B);
    const std::size_t mark = ws.mark();
    T* logits = ws.template take<T>(N * V);
    T* dlogits = ws.template take<T>(N * V);
    std::int32_t* count = ws.template take<std::int32_t>(B);
    std::int32_t* correct = ws.template take<std::int32_t>(B);
    head.forward(ctx, p + readout_.offset, N, s.query_out, logits);
    K::cross_entropy(ctx, B, L, V, L * V, kind, logits, labels, T(double(grad_scale) * cfg_.readout_weight), loss,
                     count, correct, dlogits, nullptr);
    head.backward(ctx, p + readout_.offset, N, s.query_out, dlogits, s.readout_grad, g + readout_.offset);
    ws.rewind(mark);
    return loss;
  }

 private:
  T embed_scale() const { return T(std::sqrt(double(Dm_))); }

  index_t cells() const { return S_ - context_tokens_; }  // L: token rows of the query
  // The query canvas is a demo canvas (side G), so its cells take the input grid's positions.
  bool query_has_positions() const { return cells() == cfg_.grid_side * cfg_.grid_side; }
  // Keys of the query cross-attention per row: the demo tokens, twice with raw_lookup.
  index_t lookup_keys() const { return (cfg_.raw_lookup ? 2 : 1) * cfg_.max_demos * cfg_.pair_len(); }
  cross_dims query_dims(index_t B) const { return {B, cells(), lookup_keys(), Dm_, H_, eps_}; }

  // x's token rows [B, L, D] ← rms_norm(q + o_proj(attn(q, demo tokens))), q = the rows
  // (+ scale · input-grid positions). PAD demo tokens are masked as in the aggregation.
  void read_demos(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* inputs, saved& s, T* x,
                  index_t x_stride, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t LD = cells() * Dm_;
    K::copy_2d(ctx, B, LD, x + P_total_, x_stride, s.query_in, LD, T(1));
    if (query_has_positions()) {
      const std::size_t mark = ws.mark();
      T* ones = ws.template take<T>(B);
      K::fill(ctx, B, T(1), ones);
      // query_in[B, L·D] += ones[B, 1] · (scale · pos)[1, L·D]   (pos: the input grid's rows)
      K::gemm(ctx, false, false, B, LD, 1, embed_scale(), ones, 1, 0, s.pos, LD, 0, T(1), s.query_in, LD, 0, 1);
      ws.rewind(mark);
      if (cfg_.neighbour_cells) {
        neighbour_ids<D>(ctx, B, cfg_.grid_side, neighbours(), inputs, s.query_neighbours);
        add_neighbours(ctx, p, B * cells(), s.query_neighbours, s.query_in, ws);
      }
      if (cfg_.pattern_cells) {
        kernels<D>::for_each(ctx, data::pattern_relations * B * cells(),
                             data::pattern_neighbours{inputs, B, int(cfg_.grid_side), s.query_pattern_neighbours});
        prior_search_rows() += std::uint64_t(B);
        kernels<D>::for_each(ctx, B, patterns(B, s, inputs, s.query_pattern));
        add_embedding(ctx, p + pattern_.offset, B * cells(), s.query_pattern, s.query_in, ws);
      }
      if (cfg_.search_alignment) add_embedding(ctx, p + transported_.offset, B * cells(), s.query_transported, s.query_in, ws);
      if (cfg_.candidate_cells) add_embedding(ctx, p + candidate_.offset, B * cells(), s.query_candidate, s.query_in, ws);
    }
    const T* demo_tokens = s.pair_out.empty() ? s.x0 : s.pair_out.back();
    const T *keys = demo_tokens, *bias = s.key_bias;
    if (cfg_.raw_lookup) {  // [B, 2, M·Lp, D]: as embedded, then after the blocks
      const index_t n = cfg_.max_demos * cfg_.pair_len(), nD = n * Dm_;
      K::copy_2d(ctx, B, nD, s.x0, nD, s.lookup, 2 * nD, T(1));
      K::copy_2d(ctx, B, nD, demo_tokens, nD, s.lookup + nD, 2 * nD, T(1));
      K::copy_2d(ctx, B, n, s.key_bias, n, s.lookup_bias, 2 * n, T(1));
      K::copy_2d(ctx, B, n, s.key_bias, n, s.lookup_bias + n, 2 * n, T(1));
      keys = s.lookup, bias = s.lookup_bias;
    }
    query_cross_.forward(ctx, p, cross_shape<T>{query_dims(B), bias}, {s.query_in, keys}, s.query_out, &s.query_cross,
                         ws);
    K::copy_2d(ctx, B, LD, s.query_out, LD, x + P_total_, x_stride, T(1));
  }

  // Backward of read_demos: adds ∂/∂demo tokens into dkv (with raw_lookup, writes ∂/∂ the tokens
  // as embedded into draw [B, M·Lp, D]), rewrites dx's token rows to ∂/∂(rows before the read)
  // and returns ∂/∂query_in [B, L, D] (workspace, for the positions).
  T* read_demos_backward(context_t<D>& ctx, const T* p, index_t B, const saved& s, const T* demo_tokens, T* dx,
                         index_t x_stride, T* dkv, T* draw, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t LD = cells() * Dm_, nD = cfg_.max_demos * cfg_.pair_len() * Dm_;
    T* dquery = ws.template take<T>(B * LD);
    const std::size_t mark = ws.mark();
    T* dout = ws.template take<T>(B * LD);
    T* dkeys = ws.template take<T>(B * lookup_keys() * Dm_);
    K::copy_2d(ctx, B, LD, dx + P_total_, x_stride, dout, LD, T(1));
    if (s.readout_grad) K::map(ctx, B * LD, ops::add_fn<T>{}, dout, dout, s.readout_grad);
    query_cross_.backward(ctx, p, cross_shape<T>{query_dims(B), nullptr},
                          {s.query_in, cfg_.raw_lookup ? s.lookup : demo_tokens}, s.query_out, s.query_cross, dout,
                          {dquery, dkeys}, g, ws);
    const T* dblocks = dkeys;  // ∂/∂ the keys after the blocks [B, M·Lp, D]
    if (cfg_.raw_lookup) {  // dkeys: [B, 2, M·Lp, D], the raw half to draw, the other packed
      T* packed = ws.template take<T>(B * nD);
      K::copy_2d(ctx, B, nD, dkeys, 2 * nD, draw, nD, T(1));
      K::copy_2d(ctx, B, nD, dkeys + nD, 2 * nD, packed, nD, T(1));
      dblocks = packed;
    }
    K::map(ctx, B * nD, ops::add_fn<T>{}, dkv, dkv, dblocks);
    K::copy_2d(ctx, B, LD, dquery, LD, dx + P_total_, x_stride, T(1));
    ws.rewind(mark);
    return dquery;
  }

  // x[i] += scale · E[ids[i]]   ids: [n]; x: [n, D]
  void add_embedding(context_t<D>& ctx, const T* table, index_t n, const std::int32_t* ids, T* x,
                     workspace<D>& ws) const {
    const std::size_t mark = ws.mark();
    T* e = ws.template take<T>(n * Dm_);
    kernels<D>::gather_rows(ctx, 1, n, Dm_, ids, table, embed_scale(), e, 0);
    kernels<D>::map(ctx, n * Dm_, ops::add_fn<T>{}, x, x, e);
    ws.rewind(mark);
  }

  // (search_alignment) The transported demo outputs and query cells of every row (and with
  // candidate_cells their recoloured copies): align_demo_rows, one row per device thread.
  void align_cells(context_t<D>& ctx, index_t B, const std::int32_t* context, const std::int32_t* inputs,
                   saved& s) const {
    const bool query = inputs && query_has_positions();
    prior_search_rows() += std::uint64_t(B);
    kernels<D>::for_each(ctx, B,
                         align_demo_rows{context, query ? inputs : nullptr, cfg_.context_width(), cfg_.max_demos,
                                         cfg_.pair_len(), cells(), int(cfg_.grid_side), int(V_), s.transported,
                                         s.query_transported, cfg_.candidate_cells ? s.candidate : nullptr,
                                         s.query_candidate});
  }

  // (pattern_cells) The look-alikes' answers of the demo outputs, or with `queries` of the query cells.
  pattern_rows patterns(index_t B, const saved& s, const std::int32_t* queries, std::int32_t* out) const {
    return {s.tokens, s.flags, s.pattern_neighbours, queries, s.query_pattern_neighbours, s.pattern_ranking,
            B, cfg_.max_demos, cfg_.pair_len(), cells(), int(cfg_.grid_side), int(V_), out};
  }

  data::neighbour_kind neighbours() const { return {cfg_.neighbour_rays, cfg_.neighbour_relations}; }
  // Rows of each neighbour table: a token's, or a relation's.
  index_t neighbour_vocab() const { return cfg_.neighbour_relations ? data::neighbour_relation_ids : V_; }
  // x[i] += scale · Σ_d E_d[ids[d, i]]   ids: [8, n]; x: [n, D]
  void add_neighbours(context_t<D>& ctx, const T* p, index_t n, const std::int32_t* ids, T* x,
                      workspace<D>& ws) const {
    for (index_t d = 0; d < 8; ++d)
      add_embedding(ctx, p + neighbours_.offset + d * neighbour_vocab() * Dm_, n, ids + d * n, x, ws);
  }
  void neighbours_backward(context_t<D>& ctx, index_t n, const std::int32_t* ids, const T* dx, T* g) const {
    for (index_t d = 0; d < 8; ++d)
      kernels<D>::scatter_add_rows(ctx, 1, n, Dm_, ids + d * n, dx, 0, embed_scale(),
                                   g + neighbours_.offset + d * neighbour_vocab() * Dm_);
  }

  // The encoder's blocks use no positional rotation: positions are embedded.
  seq_shape<T> pair_shape(index_t B) const { return {{B * cfg_.max_demos, cfg_.pair_len(), Dm_, H_, eps_}}; }
  seq_shape<T> latent_shape(index_t B) const { return {{B, context_tokens_, Dm_, H_, eps_}}; }
  // The latent queries over the demo tokens, PAD keys masked.
  cross_shape<T> aggregation_shape(index_t B, const saved& s) const {
    const index_t M = cfg_.max_demos, Lp = cfg_.pair_len();
    return {per_pair ? cross_dims{B * M, context_tokens_, Lp, Dm_, H_, eps_}
                     : cross_dims{B, context_tokens_, M * Lp, Dm_, H_, eps_},
            s.key_bias};
  }

  void encode(context_t<D>& ctx, const T* p, index_t B, const std::int32_t* context, saved& s, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t M = cfg_.max_demos, Lp = cfg_.pair_len(), Dm = Dm_, W = cfg_.context_width(),
                  KD = context_tokens_ * Dm;
    const index_t rows = per_pair ? B * M : B;
    // Pack the tokens of every row: [B, M·Lp], and the presence flags, then the counts, that
    // follow them in the context: [2, B, M].
    K::copy_2d(ctx, B, M * Lp, context, W, s.tokens, M * Lp, std::int32_t(1));
    K::copy_2d(ctx, B, M, context + M * Lp, W, s.flags, M, std::int32_t(1));
    K::copy_2d(ctx, B, M, context + M * Lp + M, W, s.flags + B * M, M, std::int32_t(1));
    // Pair embeddings: scale · (token + row + column + segment).
    K::gather_rows(ctx, 1, Lp, Dm, row_ids_.data(), p + row_.offset, T(1), s.pos, 0);
    T* tmp = ws.template take<T>(Lp * Dm);
    K::gather_rows(ctx, 1, Lp, Dm, col_ids_.data(), p + col_.offset, T(1), tmp, 0);
    K::map(ctx, Lp * Dm, ops::add_fn<T>{}, s.pos, s.pos, tmp);
    K::gather_rows(ctx, 1, Lp, Dm, seg_ids_.data(), p + seg_.offset, T(1), tmp, 0);
    K::map(ctx, Lp * Dm, ops::add_fn<T>{}, s.pos, s.pos, tmp);
    const T scale = embed_scale();
    K::gather_rows(ctx, 1, B * M * Lp, Dm, s.tokens, p + tok_.offset, scale, s.x0, 0);
    if (cfg_.aligned_cells) {
      // [B·M, 2, G²] with the halves swapped: the input cell for an output token and vice versa.
      const index_t half = Lp / 2;
      K::copy_2d(ctx, B * M, half, s.tokens + half, Lp, s.aligned, Lp, std::int32_t(1));
      K::copy_2d(ctx, B * M, half, s.tokens, Lp, s.aligned + half, Lp, std::int32_t(1));
      add_embedding(ctx, p + aligned_.offset, B * M * Lp, s.aligned, s.x0, ws);
    }
    if (cfg_.search_alignment) add_embedding(ctx, p + transported_.offset, B * M * Lp, s.transported, s.x0, ws);
    if (cfg_.candidate_cells) add_embedding(ctx, p + candidate_.offset, B * M * Lp, s.candidate, s.x0, ws);
    if (cfg_.neighbour_cells) {  // every grid of every pair: [B·M·2, G, G]
      neighbour_ids<D>(ctx, B * M * 2, cfg_.grid_side, neighbours(), s.tokens, s.neighbours);
      add_neighbours(ctx, p, B * M * Lp, s.neighbours, s.x0, ws);
    }
    if (cfg_.pattern_cells) {  // every grid of every pair: [B·M·2, G, G]
      K::for_each(ctx, data::pattern_relations * B * M * Lp,
                  data::pattern_neighbours{s.tokens, B * M * 2, int(cfg_.grid_side), s.pattern_neighbours});
      prior_search_rows() += std::uint64_t(B);
      K::for_each(ctx, B, patterns(B, s, nullptr, s.pattern));
      add_embedding(ctx, p + pattern_.offset, B * M * Lp, s.pattern, s.x0, ws);
    }
    T* ones = ws.template take<T>(B * M);
    K::fill(ctx, B * M, T(1), ones);
    K::gemm(ctx, false, false, B * M, Lp * Dm, 1, scale, ones, 1, 0, s.pos, Lp * Dm, 0, T(1), s.x0, Lp * Dm, 0, 1);
    // Transformer blocks over each pair.
    const seq_shape<T> pd = pair_shape(B);
    const T* cur = s.x0;
    for (std::size_t i = 0; i < pair_blocks_.size(); ++i) {
      pair_blocks_[i].forward(ctx, p, pd, {cur}, s.pair_out[i], &s.pair_saved[i], ws);
      cur = s.pair_out[i];
    }
    // Aggregation: queries over the non-PAD tokens.
    K::map(ctx, B * M * Lp, pad_mask_fn<T>{}, s.key_bias, s.tokens);
    K::copy_2d(ctx, rows, KD, p + queries_.offset, 0, s.lat_in, KD, T(1));
    cross_.forward(ctx, p, aggregation_shape(B, s), {s.lat_in, cur}, s.cross_out, &s.cross, ws);
    cross_mlp_.forward(ctx, p, row_shape{rows * context_tokens_, eps_}, {s.cross_out}, s.mlp_out, &s.mlp, ws);
    if (per_pair) {
      // mean over present pairs: [1, M] · [M, K·D] per row
      K::map(ctx, B * M, mean_weight_fn<T>{}, s.weights, s.flags, s.flags + B * M);
      K::gemm(ctx, false, false, 1, KD, M, T(1), s.weights, M, M, s.mlp_out, KD, M * KD, T(0), s.mean, KD, KD, B);
    } else {
      K::map(ctx, B * KD, ops::copy_fn<T>{}, s.mean, s.mlp_out);
    }
    const seq_shape<T> ld = latent_shape(B);
    const T* lat = s.mean;
    for (std::size_t i = 0; i < latent_blocks_.size(); ++i) {
      latent_blocks_[i].forward(ctx, p, ld, {lat}, s.latent_out[i], &s.latent_saved[i], ws);
      lat = s.latent_out[i];
    }
  }

  void inject(context_t<D>& ctx, const T* p, index_t B, const T* tokens, saved& s, T* x, index_t x_stride,
              workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t KD = context_tokens_ * Dm_;
    if (!additive) {
      K::copy_2d(ctx, B, KD, tokens, KD, x, x_stride, T(1));
      return;
    }
    K::copy_2d(ctx, B, P_total_, x, x_stride, x, x_stride, T(0));
    // pooled[B, D] = mean over the K tokens; x[b, P:, :] += pooled_b · W_injᵀ
    T* ones = ws.template take<T>(context_tokens_);
    K::fill(ctx, context_tokens_, T(1.0 / double(context_tokens_)), ones);
    K::gemm(ctx, false, false, 1, Dm_, context_tokens_, T(1), ones, context_tokens_, 0, tokens, Dm_, KD, T(0), s.pooled,
            Dm_, Dm_, B);
    T* proj = ws.template take<T>(B * Dm_);
    linear<D>{Dm_, Dm_}.forward(ctx, p + inject_.offset, B, s.pooled, proj);
    const index_t L = S_ - context_tokens_;
    T* ones_l = ws.template take<T>(L);
    K::fill(ctx, L, T(1), ones_l);
    K::gemm(ctx, false, false, L, Dm_, 1, T(1), ones_l, 1, 0, proj, Dm_, Dm_, T(1), x + P_total_, Dm_, x_stride, B);
  }

  void inject_backward(context_t<D>& ctx, const T* p, index_t B, const saved& s, const T* dx, index_t x_stride,
                       T* dctx, T* g, workspace<D>& ws) const {
    using K = kernels<D>;
    const index_t KD = context_tokens_ * Dm_;
    if (!additive) {
      K::copy_2d(ctx, B, KD, dx, x_stride, dctx, KD, T(1));
      return;
    }
    const index_t L = S_ - context_tokens_;
    T* ones_l = ws.template take<T>(L);
    K::fill(ctx, L, T(1), ones_l);
    T* dproj = ws.template take<T>(B * Dm_);
    K::gemm(ctx, true, false, 1, Dm_, L, T(1), ones_l, 1, 0, dx + P_total_, Dm_, x_stride, T(0), dproj, Dm_, Dm_, B);
    T* dpooled = ws.template take<T>(B * Dm_);
    linear<D>{Dm_, Dm_}.backward(ctx, p + inject_.offset, B, s.pooled, dproj, dpooled, g + inject_.offset);
    T* ones = ws.template take<T>(context_tokens_);
    K::fill(ctx, context_tokens_, T(1.0 / double(context_tokens_)), ones);
    K::gemm(ctx, false, false, context_tokens_, Dm_, 1, T(1), ones, 1, 0, dpooled, Dm_, Dm_, T(0), dctx, Dm_, KD, B);
  }

  encoder_config cfg_;
  index_t context_tokens_, Dm_, H_, V_;
  double eps_;
  index_t P_total_, S_;
  double expansion_;
  param_ref tok_, row_, col_, seg_, aligned_, transported_, candidate_, pattern_, neighbours_, queries_, inject_, readout_;
  std::vector<block_t> pair_blocks_, latent_blocks_;
  cross_attention<D> cross_, query_cross_;
  swiglu_mlp<D> cross_mlp_;
  buffer<std::int32_t, D> row_ids_, col_ids_, seg_ids_;
  const T* offset_ = nullptr;
  T* offset_grad_ = nullptr;
};

template <class D, class T>
using demo_encoder = typename demo_encoder_policy<>::template type<D, T>;
static_assert(readout_source<demo_encoder<archetype_device, float>, archetype_device, float> &&
              offset_source<demo_encoder<archetype_device, float>, archetype_device, float>);

ETRM_END_NAMESPACE

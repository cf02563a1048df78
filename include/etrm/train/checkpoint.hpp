// SPDX-License-Identifier: Apache-2.0
// Checkpoints in safetensors, interoperable with the official PyTorch TRM: tensors carry the
// official state_dict names and [out, in] layouts, the configuration travels as JSON under the
// `config` metadata key (official field names), F32/BF16/F16 tensors are accepted, and a
// leading `_orig_mod.` is tolerated (io/safetensors.hpp). The official names hold the weights
// evaluation uses (the EMA shadow when enabled), as the official code saves its EMA model.
// A training checkpoint adds `train.params.*`, `train.m.*`, `train.v.*` and the ACT carry so a
// run resumes exactly. Files are written atomically (temporary file + rename).
// Data parallel: saving is collective (every rank calls it, rank 0 writes) and the file holds
// the ACT carry of the global batch, so a run resumes on any number of ranks that divides it;
// loading reads every rank's slice of it.
#pragma once

#include <etrm/io/safetensors.hpp>
#include <etrm/model/config.hpp>
#include <etrm/train/trainer.hpp>

#include <filesystem>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

namespace detail {

template <class T>
std::vector<float> to_f32(const std::vector<T>& v) {
  return std::vector<float>(v.begin(), v.end());
}

template <class D, class T>
void add_device_f32(io::safetensors_writer& w, context_t<D>& ctx, const std::string& name, std::vector<std::int64_t> shape,
                    const T* src, index_t n) {
  w.add_f32(name, std::move(shape), to_f32(to_host<D>(ctx, src, n)));
}

template <class D, class T>
void read_device(const io::safetensors_file& f, context_t<D>& ctx, const std::string& name,
                 const std::vector<std::int64_t>& shape, T* dst) {
  const std::vector<float> v = f.read_f32(name, shape);
  from_host<D>(ctx, dst, std::vector<T>(v.begin(), v.end()));
}

// Fields that change tensor shapes or meaning; cycle counts and halting may differ.
inline void check_same_architecture(const trm_config& file, const trm_config& here, const std::string& origin) {
  const nlohmann::json a = file, b = here;
  for (const char* k : {"hidden_size", "num_heads", "expansion", "L_layers", "H_layers", "seq_len", "vocab_size",
                        "puzzle_emb_ndim", "puzzle_emb_len", "num_puzzle_identifiers", "pos_encodings", "mlp_t"})
    if (a.at(k) != b.at(k))
      throw io::io_error("'" + origin + "': checkpoint of another configuration: " + k + " is " + a.at(k).dump() +
                         " in the file but " + b.at(k).dump() + " here");
}

// The global batch's rows [N·B, per_row] of a per-rank device array [B, per_row], on the host.
template <class Model, class U>
std::vector<U> gather_rows(trainer<Model>& tr, const U* local, index_t per_row) {
  using D = typename Model::device_type;
  const index_t n = tr.batch() * per_row;
  if (tr.communicator().size() == 1) return to_host<D>(tr.context(), local, n);
  buffer<U, D> all(tr.global_batch() * per_row);
  tr.communicator().all_gather(local, sizeof(U) * std::size_t(n), all.data());
  return to_host<D>(tr.context(), all.data(), all.size());
}

// This rank's rows of global rows [N·B, per_row] (host) into a per-rank device array.
template <class Model, class U>
void scatter_rows(trainer<Model>& tr, const std::vector<U>& global, index_t per_row, U* local) {
  const auto first = global.begin() + std::ptrdiff_t(tr.first_row() * per_row);
  from_host<typename Model::device_type>(tr.context(), local,
                                         std::vector<U>(first, first + std::ptrdiff_t(tr.batch() * per_row)));
}

}  // namespace detail

// The configuration stored in a checkpoint (`config` metadata).
inline trm_config read_checkpoint_config(const io::safetensors_file& f) {
  const auto& md = f.metadata();
  const auto it = md.find("config");
  if (it == md.end()) throw io::io_error("'" + f.origin() + "': no 'config' metadata (pass the configuration with --config)");
  const auto fail = [&](const std::string& problem) {
    throw io::io_error("'" + f.origin() + "': malformed 'config' metadata: " + problem);
  };
  const nlohmann::json j = io::parse_json_bounded(it->second, fail);
  try {
    return j.get<trm_config>();
  } catch (const std::exception& e) {
    throw io::io_error("'" + f.origin() + "': malformed 'config' metadata: " + e.what());
  }
}

// Writes the model tensors of `weights` (a device flat buffer) under the official names, plus
// H_init, L_init and the puzzle table when the prefix source has one.
template <class Model>
void add_model_tensors(io::safetensors_writer& w, context_t<typename Model::device_type>& ctx, Model& m,
                       const typename Model::scalar_type* weights, const std::string& prefix = "") {
  using D = typename Model::device_type;
  for (const auto& e : m.layout().entries())
    detail::add_device_f32<D>(w, ctx, prefix + e.name, {e.shape.begin(), e.shape.end()}, weights + e.ref.offset,
                              e.ref.size);
  if (!prefix.empty()) return;
  const index_t Dm = m.config().hidden_size;
  detail::add_device_f32<D>(w, ctx, "model.inner.H_init", {Dm}, m.h_init(), Dm);
  detail::add_device_f32<D>(w, ctx, "model.inner.L_init", {Dm}, m.l_init(), Dm);
  if constexpr (sparse_table_source<typename Model::prefix_type, D, typename Model::scalar_type>)
    if (m.prefix().ndim() > 0)
      detail::add_device_f32<D>(w, ctx, m.prefix().table_name, {m.prefix().rows(), m.prefix().ndim()}, m.prefix().table(),
                                m.prefix().rows() * m.prefix().ndim());
}

// Reads the tensors add_model_tensors wrote (shapes checked; missing tensors are errors).
template <class Model>
void read_model_tensors(const io::safetensors_file& f, context_t<typename Model::device_type>& ctx, Model& m,
                        typename Model::scalar_type* weights, const std::string& prefix = "") {
  using D = typename Model::device_type;
  for (const auto& e : m.layout().entries())
    detail::read_device<D>(f, ctx, prefix + e.name, {e.shape.begin(), e.shape.end()}, weights + e.ref.offset);
  if (!prefix.empty()) return;
  const index_t Dm = m.config().hidden_size;
  detail::read_device<D>(f, ctx, "model.inner.H_init", {Dm}, m.h_init());
  detail::read_device<D>(f, ctx, "model.inner.L_init", {Dm}, m.l_init());
  if constexpr (sparse_table_source<typename Model::prefix_type, D, typename Model::scalar_type>)
    if (m.prefix().ndim() > 0)
      detail::read_device<D>(f, ctx, m.prefix().table_name, {m.prefix().rows(), m.prefix().ndim()}, m.prefix().table());
}

// Loads weights for inference into `weights`, after checking the file's configuration.
template <class Model>
void load_model_checkpoint(const std::filesystem::path& path, context_t<typename Model::device_type>& ctx, Model& m,
                           typename Model::scalar_type* weights) {
  const auto f = io::safetensors_file::load(path);
  if (f.metadata().count("config")) detail::check_same_architecture(read_checkpoint_config(f), m.config(), f.origin());
  read_model_tensors(f, ctx, m, weights);
}

// A checkpoint of a whole training run: evaluation weights under the official names, the raw
// parameters, both Adam moments, the ACT carry and `state` (JSON: step, data position, seeds,
// options), written atomically.
template <class Model>
void save_training_checkpoint(const std::filesystem::path& path, trainer<Model>& tr, const nlohmann::json& metadata) {
  using D = typename Model::device_type;
  auto& ctx = tr.context();
  Model& m = tr.model();
  io::safetensors_writer w;
  add_model_tensors(w, ctx, m, tr.eval_parameters());
  add_model_tensors(w, ctx, m, tr.parameters().data(), "train.params.");
  add_model_tensors(w, ctx, m, tr.moment1().data(), "train.m.");
  add_model_tensors(w, ctx, m, tr.moment2().data(), "train.v.");
  auto s = tr.act_state();
  const auto& c = m.config();
  const std::int64_t B = tr.global_batch(), S = c.full_len(), Dm = c.hidden_size, L = c.seq_len,
                     R = m.prefix().context_width();
  w.add_f32("train.carry.z_H", {B, S, Dm}, detail::to_f32(detail::gather_rows(tr, s.carry.zh.data(), S * Dm)));
  w.add_f32("train.carry.z_L", {B, S, Dm}, detail::to_f32(detail::gather_rows(tr, s.carry.zl.data(), S * Dm)));
  w.add_i32("train.carry.steps", {B}, detail::gather_rows(tr, s.steps.data(), 1));
  const auto halted = detail::gather_rows(tr, s.halted.data(), 1);
  w.add_i32("train.carry.halted", {B}, std::vector<std::int32_t>(halted.begin(), halted.end()));
  w.add_i32("train.carry.inputs", {B, L}, detail::gather_rows(tr, s.inputs.data(), L));
  w.add_i32("train.carry.labels", {B, L}, detail::gather_rows(tr, s.labels.data(), L));
  w.add_i32("train.carry.context", {B, R}, detail::gather_rows(tr, s.context.data(), R));
  if (tr.communicator().rank() != 0) return;
  w.set_metadata("config", nlohmann::json(c).dump());
  nlohmann::json state = metadata;
  state["step"] = tr.step();
  w.set_metadata("train_state", state.dump());
  for (const auto& [k, v] : metadata.items())
    if (v.is_string()) w.set_metadata(k, v.template get<std::string>());
  w.save(path);
}

// Restores everything save_training_checkpoint wrote; returns the `train_state` JSON.
template <class Model>
nlohmann::json load_training_checkpoint(const std::filesystem::path& path, trainer<Model>& tr) {
  using D = typename Model::device_type;
  auto& ctx = tr.context();
  Model& m = tr.model();
  const auto f = io::safetensors_file::load(path);
  detail::check_same_architecture(read_checkpoint_config(f), m.config(), f.origin());
  const auto it = f.metadata().find("train_state");
  if (it == f.metadata().end()) throw io::io_error("'" + f.origin() + "': not a training checkpoint (no train_state)");
  read_model_tensors(f, ctx, m, tr.parameters().data(), "train.params.");
  read_model_tensors(f, ctx, m, tr.moment1().data(), "train.m.");
  read_model_tensors(f, ctx, m, tr.moment2().data(), "train.v.");
  // The official names hold the evaluation weights (and the buffers H_init, L_init, puzzle table).
  read_model_tensors(f, ctx, m, tr.ema().size() ? tr.ema().data() : tr.parameters().data());
  auto s = tr.act_state();
  const auto& c = m.config();
  const std::int64_t B = tr.global_batch(), S = c.full_len(), Dm = c.hidden_size, L = c.seq_len,
                     R = m.prefix().context_width();
  using T = typename Model::scalar_type;
  const auto carry = [&](const char* name, T* dst) {
    const std::vector<float> v = f.read_f32(name, {B, S, Dm});
    detail::scatter_rows(tr, std::vector<T>(v.begin(), v.end()), S * Dm, dst);
  };
  carry("train.carry.z_H", s.carry.zh.data());
  carry("train.carry.z_L", s.carry.zl.data());
  detail::scatter_rows(tr, f.read_i32("train.carry.steps", {B}), 1, s.steps.data());
  const auto h = f.read_i32("train.carry.halted", {B});
  detail::scatter_rows(tr, std::vector<std::uint8_t>(h.begin(), h.end()), 1, s.halted.data());
  detail::scatter_rows(tr, f.read_i32("train.carry.inputs", {B, L}), L, s.inputs.data());
  detail::scatter_rows(tr, f.read_i32("train.carry.labels", {B, L}), L, s.labels.data());
  detail::scatter_rows(tr, f.read_i32("train.carry.context", {B, R}), R, s.context.data());
  const nlohmann::json state = io::parse_json_bounded(it->second, [&](const std::string& problem) {
    throw io::io_error("'" + f.origin() + "': malformed train_state metadata: " + problem);
  });
  if (!state.is_object() || !state.contains("step") || !state.at("step").is_number_unsigned())
    throw io::io_error("'" + f.origin() + "': malformed train_state metadata: no non-negative integer 'step'");
  tr.set_step(state.at("step").get<index_t>());
  return state;
}

ETRM_END_NAMESPACE

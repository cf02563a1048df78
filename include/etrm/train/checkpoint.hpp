// SPDX-License-Identifier: Apache-2.0
// Checkpoints in safetensors, interoperable with the official PyTorch TRM: tensors carry the
// official state_dict names and [out, in] layouts, the configuration travels as JSON under the
// `config` metadata key (official field names), F32/BF16/F16 tensors are accepted, and a
// leading `_orig_mod.` is tolerated (io/safetensors.hpp). The official names hold the weights
// evaluation uses (the EMA shadow when enabled), as the official code saves its EMA model.
// A training checkpoint adds `train.params.*`, `train.m.*`, `train.v.*` and the ACT carry so a
// run resumes exactly. Files are written atomically (temporary file + rename).
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

}  // namespace detail

// The configuration stored in a checkpoint (`config` metadata).
inline trm_config read_checkpoint_config(const io::safetensors_file& f) {
  const auto& md = f.metadata();
  const auto it = md.find("config");
  if (it == md.end()) throw io::io_error("'" + f.origin() + "': no 'config' metadata (pass the configuration with --config)");
  try {
    return nlohmann::json::parse(it->second).get<trm_config>();
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
  if constexpr (requires { m.prefix().table(); })
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
  if constexpr (requires { m.prefix().table(); })
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
  const std::int64_t B = tr.batch(), S = c.full_len(), Dm = c.hidden_size, L = c.seq_len,
                     R = m.prefix().context_width();
  detail::add_device_f32<D>(w, ctx, "train.carry.z_H", {B, S, Dm}, s.carry.zh.data(), B * S * Dm);
  detail::add_device_f32<D>(w, ctx, "train.carry.z_L", {B, S, Dm}, s.carry.zl.data(), B * S * Dm);
  w.add_i32("train.carry.steps", {B}, to_host<D>(ctx, s.steps.data(), B));
  const auto halted = to_host<D>(ctx, s.halted.data(), B);
  w.add_i32("train.carry.halted", {B}, std::vector<std::int32_t>(halted.begin(), halted.end()));
  w.add_i32("train.carry.inputs", {B, L}, to_host<D>(ctx, s.inputs.data(), B * L));
  w.add_i32("train.carry.labels", {B, L}, to_host<D>(ctx, s.labels.data(), B * L));
  w.add_i32("train.carry.context", {B, R}, to_host<D>(ctx, s.context.data(), B * R));
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
  const std::int64_t B = tr.batch(), S = c.full_len(), Dm = c.hidden_size, L = c.seq_len,
                     R = m.prefix().context_width();
  detail::read_device<D>(f, ctx, "train.carry.z_H", {B, S, Dm}, s.carry.zh.data());
  detail::read_device<D>(f, ctx, "train.carry.z_L", {B, S, Dm}, s.carry.zl.data());
  from_host<D>(ctx, s.steps.data(), f.read_i32("train.carry.steps", {B}));
  const auto h = f.read_i32("train.carry.halted", {B});
  from_host<D>(ctx, s.halted.data(), std::vector<std::uint8_t>(h.begin(), h.end()));
  from_host<D>(ctx, s.inputs.data(), f.read_i32("train.carry.inputs", {B, L}));
  from_host<D>(ctx, s.labels.data(), f.read_i32("train.carry.labels", {B, L}));
  from_host<D>(ctx, s.context.data(), f.read_i32("train.carry.context", {B, R}));
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    throw io::io_error("'" + f.origin() + "': malformed train_state metadata: " + e.what());
  }
  tr.set_step(state.at("step").get<index_t>());
  return state;
}

ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// Flat parameter storage. A model declares its tensors once in a `param_layout` (name, shape,
// initialiser); values, gradients and optimizer moments are each one flat device buffer, and
// layers hold `param_ref`s (offset + shape) into them. Optimizers, zeroing, EMA, clipping and
// checkpoints then work on flat arrays.
#pragma once

#include <etrm/core/init.hpp>
#include <etrm/core/tensor.hpp>

#include <algorithm>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

ETRM_BEGIN_NAMESPACE

struct param_ref {
  index_t offset = 0;
  index_t size = 0;
  template <class T>
  T* in(T* base) const {
    return base + offset;
  }
};

// The optimizer's learning-rate groups: the network, and the prefix source's own weights
// (ETRM's demo encoder), which learn at lr · optimizer_config::encoder_lr_scale.
enum class param_group : std::uint8_t { network, encoder };

struct param_entry {
  std::string name;  // the official PyTorch state_dict name
  std::vector<index_t> shape;
  init_spec init;
  param_ref ref;
  param_group group = param_group::network;
};

// A contiguous range [begin, end) of the flat buffer whose tensors share a group.
struct param_run {
  index_t begin = 0, end = 0;
  param_group group = param_group::network;
};

class param_layout {
 public:
  // Tensors are padded to 64 elements so that every slice stays 256-byte aligned.
  param_ref add(std::string name, std::vector<index_t> shape, init_spec init) {
    index_t n = 1;
    for (index_t s : shape) n *= s;
    const param_ref ref{total_, n};
    entries_.push_back({std::move(name), std::move(shape), init, ref, group_});
    total_ += (n + 63) / 64 * 64;
    return ref;
  }

  // Every tensor added while the returned guard lives belongs to `g`.
  class group_scope {
   public:
    group_scope(param_layout& l, param_group g) : layout_(l), outer_(l.group_) { l.group_ = g; }
    ~group_scope() { layout_.group_ = outer_; }
    group_scope(const group_scope&) = delete;
    group_scope& operator=(const group_scope&) = delete;

   private:
    param_layout& layout_;
    param_group outer_;
  };
  [[nodiscard]] group_scope in_group(param_group g) { return {*this, g}; }

  // The flat buffer as maximal runs of one group each, in order (padding goes with the tensor
  // before it), so an optimizer step is one update per run.
  std::vector<param_run> group_runs() const {
    std::vector<param_run> runs;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const index_t end = i + 1 < entries_.size() ? entries_[i + 1].ref.offset : total_;
      if (!runs.empty() && runs.back().group == entries_[i].group)
        runs.back().end = end;
      else
        runs.push_back({entries_[i].ref.offset, end, entries_[i].group});
    }
    return runs;
  }
  const std::vector<param_entry>& entries() const { return entries_; }
  const param_entry* find(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  index_t total() const { return total_; }  // flat buffer length, padding included
  index_t count() const {                    // number of scalars, padding excluded
    index_t n = 0;
    for (const auto& e : entries_) n += e.ref.size;
    return n;
  }
  // Host values of every tensor from the initialisers, tensor i drawing from stream i; then
  // the copy_of tensors take their source's values.
  template <class T>
  std::vector<T> initial_values(std::uint64_t seed) const {
    std::vector<T> host(std::size_t(total_), T(0));
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const auto& e = entries_[i];
      if (e.init.kind != init_kind::copy_of)
        fill_init<T>(std::span<T>(host.data() + e.ref.offset, std::size_t(e.ref.size)), e.init,
                     philox_key{seed, 0x1000 + i});
    }
    for (const auto& e : entries_) {
      if (e.init.kind != init_kind::copy_of) continue;
      const param_entry* src = find(e.init.source);
      if (!src || src->shape != e.shape || src->init.kind == init_kind::copy_of)
        throw std::logic_error("param_layout: " + e.name + " is initialised as a copy of " + e.init.source +
                               ", which is not a drawn tensor of the same shape");
      std::copy_n(host.begin() + src->ref.offset, e.ref.size, host.begin() + e.ref.offset);
    }
    return host;
  }

 private:
  std::vector<param_entry> entries_;
  index_t total_ = 0;
  param_group group_ = param_group::network;
};

ETRM_END_NAMESPACE

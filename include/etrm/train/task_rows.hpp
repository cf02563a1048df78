// SPDX-License-Identifier: Apache-2.0
// How a model's rows carry a task, so test-time training and the task solver serve both model
// kinds: an ETRM model reads the demonstrations beside each query (its encoder's canvas and demo
// count); TRM with puzzle ids reads none, and a task it never saw gets the blank id 0. Rows are
// built in ETRM's form and handed to a model with ids without their demos, so both kinds are
// fitted on the same demonstration rows and answer the same queries.
#pragma once

#include <etrm/data/episode.hpp>
#include <etrm/data/token_batch.hpp>
#include <etrm/model/demo_encoder.hpp>
#include <etrm/model/puzzle_prefix.hpp>

#include <cmath>
#include <type_traits>

ETRM_BEGIN_NAMESPACE

// Whether Model reads the task's demonstrations (ETRM) rather than a puzzle id (TRM).
template <class Model>
inline constexpr bool reads_demos_v =
    !std::is_same_v<typename Model::prefix_type, puzzle_id_prefix<typename Model::device_type, typename Model::scalar_type>>;

// The rows an encoder configuration reads: its canvas side and demo count.
inline data::episode_shape episode_shape_of(const encoder_config& e) { return {int(e.grid_side), int(e.max_demos)}; }

// The shape of m's rows: ETRM's encoder canvas and demo count; for a model with ids the canvas of
// its sequence (side² = seq_len) and `demos` demonstrations (they are dropped again by
// to_model_rows, so any count that the rows need to hold).
template <class Model>
data::episode_shape task_shape(const Model& m, int demos) {
  if constexpr (reads_demos_v<Model>) {
    return episode_shape_of(m.prefix().encoder());
  } else {
    return {int(std::lround(std::sqrt(double(m.config().seq_len)))), demos};
  }
}

// b as Model reads it: unchanged for ETRM; for a model with ids the demos are replaced by the
// blank id 0 (context [B, 1]).
template <class Model>
void to_model_rows(token_batch& b) {
  if constexpr (!reads_demos_v<Model>) b.context.assign(std::size_t(b.batch), 0);
}

ETRM_END_NAMESPACE

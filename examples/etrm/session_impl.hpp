// SPDX-License-Identifier: Apache-2.0
// The model commands as one template over the model type; included by the four variant files.
#pragma once

#include "data_sources.hpp"
#include "infer_input.hpp"
#include "metrics_log.hpp"
#include "progress.hpp"
#include "session.hpp"

#include <etrm/data/evaluator.hpp>
#include <etrm/data/render.hpp>
#include <etrm/etrm.hpp>
#include <etrm/io/atomic_file.hpp>
#include <etrm/io/safetensors.hpp>

#include <fmt/core.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>

namespace etrm_cli {

namespace fs = std::filesystem;
using C = etrm::cpu_device;

// Set by SIGINT during training; the loop finishes its step, saves and exits.
inline volatile std::sig_atomic_t interrupted = 0;
inline void on_sigint(int) {
  interrupted = 1;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

inline void ensure_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw etrm::io::io_error("cannot create output directory '" + dir.string() + "': " +
                             (ec ? ec.message() : std::string("not a directory")));
  const fs::path probe = dir / ".etrm-write-test";
  {
    std::ofstream f(probe);
    if (!f) throw etrm::io::io_error("cannot write into output directory '" + dir.string() + "'");
  }
  fs::remove(probe, ec);
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct split_result {
  std::string name;
  index_t rows = 0;
  double loss = 0, accuracy = 0, exact = 0, q_halt_accuracy = 0;
  std::optional<etrm::collapse_metrics> collapse;  // ETRM: the encoder-collapse monitor
  std::vector<json> per_task;
  json arc;  // pass@k when the split votes
  // Test-time adaptation of single-answer rows: the share of rows that the adapted answer or,
  // as a second attempt, the unadapted one answers exactly (pass@2 as ARC scores it).
  std::optional<double> pass2_with_unadapted;
  index_t fitting = -1;          // a suite: tasks that fit the canvas (the others failed)
  std::uint64_t prior_rows = 0;  // task rows the per-task priors searched during this split
  json summary() const {
    json j{{"split", name}, {"rows", rows}, {"loss", loss}, {"accuracy", accuracy}, {"exact_accuracy", exact},
           {"q_halt_accuracy", q_halt_accuracy}, {"prior_search_rows", prior_rows}};
    if (fitting >= 0) j["fitting_tasks"] = fitting;
    if (collapse) {
      j["context_spread"] = collapse->context_spread;
      j["demo_dependence"] = collapse->demo_dependence;
    }
    if (!arc.is_null()) j["arc"] = arc;
    if (pass2_with_unadapted) j["pass@2_with_unadapted"] = *pass2_with_unadapted;
    return j;
  }
};

// How an evaluation treats the demonstrations: as given, the two ETRM controls, or as given with
// test-time adaptation (of the context tokens, train/context_adaptation.hpp, or of the weights,
// train/weight_adaptation.hpp).
enum class control { none, no_demos, wrong_demos, adapted };

template <class Model>
class runner {
 public:
  using T = float;
  static constexpr bool is_etrm = !std::is_same_v<typename Model::prefix_type, etrm::puzzle_id_prefix<C, T>>;

  explicit runner(session& s) : s_(s), ctx_(s.threads, s.precision), global_(tbb::global_control::max_allowed_parallelism,
                                                                  std::size_t(s.threads > 0 ? s.threads : ctx_.threads())) {}

  int run() {
    if (!is_etrm && s_.adapt_steps > 0 && s_.adapt != "weights")
      throw std::invalid_argument("--adapt context needs an ETRM checkpoint (a TRM has no context tokens); use --adapt weights");
    if (s_.command == "train" || s_.command == "resume") return train();
    if (s_.comm.size() > 1)
      throw std::invalid_argument(s_.command + " runs in one process: start it without mpirun (train and resume run on N ranks)");
    if (s_.command == "eval") return eval();
    if (s_.command == "solve") return solve();
    if (s_.command == "infer") return infer();
    throw std::invalid_argument("unknown command " + s_.command);
  }

 private:
  void build(index_t B) {
    if constexpr (is_etrm)
      model_ = std::make_unique<Model>(ctx_, s_.spec.cfg, s_.spec.enc);
    else
      model_ = std::make_unique<Model>(ctx_, s_.spec.cfg);
    typename etrm::trainer<Model>::options o;
    o.optimizer = s_.spec.opt;
    o.loss = s_.spec.loss == "softmax" ? etrm::ops::loss_kind::softmax : etrm::ops::loss_kind::stablemax;
    o.seed = s_.spec.seed;
    o.max_skipped_steps = s_.spec.max_skipped_steps;
    if (s_.command != "train" && s_.command != "resume") o.optimizer.ema_rate = 0;  // inference: one copy of the weights
    tr_ = std::make_unique<etrm::trainer<Model>>(ctx_, *model_, B, o, s_.comm);
  }

  bool lead() const { return s_.comm.rank() == 0; }  // the rank that prints and writes files

  // Every rank of a data-parallel run must train the same run: rank 0's description is
  // compared with each rank's own (an mpirun line with different options per rank is refused).
  void check_same_run() {
    const std::string mine = to_json(s_.spec).dump();
    std::uint64_t size = mine.size();
    s_.comm.broadcast(&size, sizeof size, 0);
    std::string first = mine;
    first.resize(size);
    s_.comm.broadcast(first.data(), size, 0);
    if (first != mine)
      throw std::invalid_argument(fmt::format("rank {} was started with other options than rank 0", s_.comm.rank()));
  }

  // ---- training -----------------------------------------------------------------------------

  json checkpoint_metadata(index_t step, double elapsed, bool interrupted_now) const {
    return json{{"run", to_json(s_.spec)}, {"tool", "etrm"},          {"task", s_.spec.task},
                {"model_kind", s_.spec.model}, {"seed", s_.spec.seed}, {"data_position", step},
                {"elapsed_s", elapsed},   {"interrupted", interrupted_now}};
  }

  int train() {
    run_spec& r = s_.spec;
    const int ranks = s_.comm.size();
    if (r.batch_size % ranks)
      throw std::invalid_argument(fmt::format("the global batch of {} rows does not split over {} ranks", r.batch_size, ranks));
    if (ranks > 1) check_same_run();
    if (lead()) ensure_output_dir(s_.out);
    auto provider = make_provider(r);
    r.cfg.validate();
    build(r.batch_size / ranks);
    auto& tr = *tr_;
    const bool resuming = s_.command == "resume";
    double prior_elapsed = 0;
    const fs::path ckpt = s_.out / "checkpoint.safetensors";
    etrm::io::remove_stale_temporaries(ckpt);  // left by a run killed while writing its checkpoint
    if (resuming) {
      const json state = etrm::load_training_checkpoint(s_.checkpoint, tr);
      prior_elapsed = state.value("elapsed_s", 0.0);
      if (lead()) truncate_metrics(s_.out / "metrics.jsonl", tr.step());
    } else if (!r.init_from.empty()) {
      etrm::load_model_checkpoint(r.init_from, ctx_, *model_, tr.parameters().data());
      tr.reset_ema();
    }
    if (r.steps <= 0 && r.minutes <= 0) throw std::invalid_argument("no budget: give --steps and/or --minutes");
    if (r.steps > 0 && tr.step() >= r.steps) {
      if (lead()) fmt::print("already at step {} of {}: nothing to do\n", tr.step(), r.steps);
      return 0;
    }
    jsonl_log log(s_.out / "metrics.jsonl", resuming, lead());
    if (lead()) {  // the run's description, for people and scripts
      std::ofstream f(s_.out / "run.json");
      f << to_json(r).dump(2) << '\n';
      fmt::print("etrm {}: task {}, model {}{}{}, {} parameters, batch {}, seq_len {}, {} threads{}, {} GEMMs{}\n",
                 resuming ? "resume" : "train", r.task, r.model, r.cfg.mlp_t ? " (mlp_t)" : "",
                 r.model == "etrm" ? (priors_on(r) ? " + per-task priors" : " (learned, no per-task priors)") : "",
                 model_->layout().count(), r.batch_size, r.cfg.seq_len, ctx_.threads(),
                 ranks > 1 ? fmt::format(" x {} ranks", ranks) : std::string(), etrm::to_string(ctx_.precision()),
                 resuming ? fmt::format(", from step {}", tr.step()) : std::string());
      std::fflush(stdout);
    }

    interrupted = 0;
    std::signal(SIGINT, on_sigint);
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    progress_display bar(s_.progress && lead(), r.steps, r.minutes * 60.0, tr.step());
    struct acc_t {
      index_t steps = 0, rows = 0, skipped = 0;
      double loss = 0, lm = 0, qh = 0, readout = 0, acc = 0, exact = 0, qacc = 0, nsteps = 0, t = 0;
    } acc;
    double last_log_time = 0;
    index_t last_eval = -1;
    bool stopped_by_signal = false;
    for (;;) {
      if (r.steps > 0 && tr.step() >= r.steps) break;
      // Rank 0's clock and Ctrl-C decide for every rank, so that all stop after the same step.
      std::uint8_t stop[2] = {r.minutes > 0 && seconds() >= r.minutes * 60.0, interrupted != 0};
      if (ranks > 1) s_.comm.broadcast(stop, sizeof stop, 0);
      if (stop[0]) break;
      if (stop[1]) {
        stopped_by_signal = true;
        break;
      }
      // Every rank draws the global batch of this step and trains on its slice of the rows.
      etrm::token_batch b = provider->train_batch(r.batch_size, std::uint64_t(tr.step()));
      if (ranks > 1) b = etrm::batch_rows(b, tr.first_row(), tr.batch());
      const etrm::step_metrics m = tr.train_step(b);
      const index_t step = tr.step();
      if (m.skipped) {
        acc.skipped++;
        if (lead()) std::fprintf(stderr, "etrm: step %lld skipped: its gradients hold a NaN or Inf (loss %g)\n",
                                 static_cast<long long>(step), m.loss);
      } else {
        acc.steps++;
        acc.loss += m.loss;
        acc.lm += m.lm_loss;
        acc.qh += m.q_halt_loss;
        acc.readout += m.readout_loss;
        acc.rows += m.count;
        acc.acc += m.accuracy * double(m.count);
        acc.exact += m.exact_accuracy * double(m.count);
        acc.qacc += m.q_halt_accuracy * double(m.count);
        acc.nsteps += m.steps * double(m.count);
        if (!std::isfinite(m.loss)) throw etrm::non_finite_error(step, fmt::format("loss {}", m.loss));
      }
      const bool last = (r.steps > 0 && step >= r.steps) || interrupted;
      if (step % std::max<index_t>(1, r.log_every) == 0 || last) {
        const double now = seconds(), dt = std::max(1e-9, now - last_log_time);
        const double rows = std::max<double>(1, double(acc.rows)), updates = std::max<double>(1, double(acc.steps));
        json j{{"type", "train"},
               {"step", step},
               {"loss", acc.loss / updates},
               {"lm_loss", acc.lm / updates},
               {"q_halt_loss", acc.qh / updates},
               {"accuracy", acc.acc / rows},
               {"exact_accuracy", acc.exact / rows},
               {"q_halt_accuracy", acc.qacc / rows},
               {"steps", acc.nsteps / rows},
               {"halted_rows", acc.rows},
               {"lr", m.lr},
               {"elapsed_s", prior_elapsed + now},
               {"samples_per_s", double((acc.steps + acc.skipped) * r.batch_size) / dt}};
        if (acc.readout > 0) j["readout_loss"] = acc.readout / updates;
        if (acc.skipped > 0) j["skipped_steps"] = acc.skipped;
        log.write(j);
        bar.update(step, now, j);
        acc = {};
        last_log_time = now;
      } else {
        bar.tick(step, seconds(), m.loss);
      }
      if (r.eval_every > 0 && step % r.eval_every == 0) {
        bar.clear();
        evaluate_all(*provider, log, step, prior_elapsed + seconds(), false, false);
        last_eval = step;
      }
      if (r.checkpoint_every > 0 && step % r.checkpoint_every == 0)
        etrm::save_training_checkpoint(ckpt, tr, checkpoint_metadata(step, prior_elapsed + seconds(), false));
    }
    bar.clear();
    std::signal(SIGINT, SIG_DFL);
    const double elapsed = prior_elapsed + seconds();
    etrm::save_training_checkpoint(ckpt, tr, checkpoint_metadata(tr.step(), elapsed, stopped_by_signal));
    if (stopped_by_signal) {
      if (lead())
        std::fprintf(stderr, "etrm: interrupted at step %lld; checkpoint saved to %s\netrm: continue with: etrm resume --out %s\n",
                     static_cast<long long>(tr.step()), ckpt.c_str(), s_.out.c_str());
      return 130;
    }
    if (lead()) fmt::print("trained {} steps in {:.1f} s; checkpoint {}\n", tr.step(), elapsed, ckpt.string());
    // The final evaluation runs after the checkpoint is written: it replaces the ACT carry.
    if (r.eval_batches > 0 && last_eval != tr.step()) {
      evaluate_all(*provider, log, tr.step(), elapsed, false, true);
    }
    return 0;
  }

  // ---- evaluation ---------------------------------------------------------------------------

  split_result run_split(data_provider& p, eval_split sp, control ctl, const T* weights, bool per_task,
                         std::vector<std::pair<etrm::data::task, etrm::data::grid>>* pictures) {
    auto& tr = *tr_;
    split_result res;
    res.name = sp.name + (ctl == control::no_demos      ? "/no_demos"
                          : ctl == control::wrong_demos ? "/wrong_demos"
                          : ctl == control::adapted     ? (s_.adapt == "weights" ? "/ttt" : "/tta")
                                                        : "");
    // On N ranks each evaluates every Nth batch and the sums are added; a voting split (ARC)
    // needs every answer in one evaluator, so rank 0 evaluates it alone.
    const int ranks = s_.comm.size(), rank = s_.comm.rank();
    const auto mine = [&](index_t i) { return sp.arc_vote ? rank == 0 : i % ranks == rank; };
    std::unique_ptr<etrm::data::arc_evaluator> ev;
    if (sp.arc_vote && rank == 0) {
      etrm::data::evaluator_options o;
      o.pass_ks = {1, 2};
      ev = std::make_unique<etrm::data::arc_evaluator>(sp.vote_tasks, o);
    }
    res.fitting = sp.fitting;
    const std::uint64_t prior_rows_before = etrm::prior_search_rows().load();
    const index_t L = s_.spec.cfg.seq_len;
    const int side = p.canvas_side();
    double loss_sum = 0, qacc_sum = 0;
    index_t batches = 0, counted = 0;
    std::vector<std::int32_t> pred;
    std::vector<T> qh;
    for (index_t i = 0; i < sp.batches; ++i) {
      if (!mine(i)) continue;
      eval_rows e = sp.get(i);
      if constexpr (is_etrm) {
        if (ctl == control::no_demos) strip_demos(e.b, s_.spec.enc);
        if (ctl == control::wrong_demos) {
          if (sp.arc_vote)
            take_other_tasks_demos(e);
          else
            etrm::rotate_contexts(e.b, e.valid);
        }
      }
      const etrm::step_metrics m = ctl == control::adapted ? adapted_evaluate(e, weights, pred, qh, ev.get())
                                                           : tr.evaluate(e.b, &pred, &qh, weights);
      if constexpr (is_etrm)
        if (ctl == control::none && i == 0) res.collapse = etrm::measure_collapse(tr, e.b, e.valid, weights);
      loss_sum += m.lm_loss;
      qacc_sum += m.q_halt_accuracy * double(m.count);
      counted += m.count;
      ++batches;
      if (ctl == control::none && !s_.save_tasks.empty()) save_rows(e, sp.name, res.rows);
      for (index_t r = 0; r < e.valid; ++r) {
        index_t n = 0, ok = 0;
        for (index_t k = 0; k < L; ++k) {
          const auto lab = e.b.labels[std::size_t(r * L + k)];
          if (lab == etrm::data::ignore_label) continue;
          ++n;
          ok += pred[std::size_t(r * L + k)] == lab;
        }
        if (n == 0) continue;
        const bool exact = ok == n;
        ++res.rows;
        res.accuracy += double(ok) / double(n);
        res.exact += exact;
        if (per_task)
          res.per_task.push_back({{"row", res.rows - 1},
                                  {"task_id", r < index_t(e.ids.size()) ? e.ids[std::size_t(r)] : ""},
                                  {"exact", exact},
                                  {"accuracy", double(ok) / double(n)},
                                  {"q_halt", qh[std::size_t(r)]}});
        if (pictures && ctl == control::none && pictures->size() < std::size_t(s_.svg_examples) &&
            r < index_t(e.tasks.size()) && side > 0)
          pictures->emplace_back(e.tasks[std::size_t(r)], decode_canvas(pred, std::size_t(r), side));
      }
      if (ev && !votes_itself(ctl))
        for (index_t r = 0; r < e.valid; ++r) {
          ev->add(e.ids[std::size_t(r)], e.augs[std::size_t(r)], decode_canvas(e.b.inputs, std::size_t(r), side),
                  decode_canvas(pred, std::size_t(r), side), sigmoid(qh[std::size_t(r)]));
        }
    }
    if (ranks > 1) {
      double sums[] = {double(res.rows), res.accuracy, res.exact, loss_sum, qacc_sum, double(batches), double(counted)};
      s_.comm.all_reduce_sum(sums, std::size(sums));
      res.rows = index_t(sums[0]), res.accuracy = sums[1], res.exact = sums[2], loss_sum = sums[3], qacc_sum = sums[4];
      batches = index_t(sums[5]), counted = index_t(sums[6]);
    }
    if (res.rows) {
      res.accuracy /= double(res.rows);
      res.exact /= double(res.rows);
    }
    res.loss = batches ? loss_sum / double(batches) : 0;
    res.q_halt_accuracy = counted ? qacc_sum / double(counted) : 0;
    res.prior_rows = etrm::prior_search_rows().load() - prior_rows_before;
    if (ev) {
      const auto result = ev->result();
      res.arc = result.summary_json();
      // The plain split's files go to the output directory, a control's or an adapted split's to
      // a folder of its own (arc-eval.ttt/ ...), so neither overwrites the other.
      std::string folder = res.name;
      std::replace(folder.begin(), folder.end(), '/', '.');
      ev->write(result, ctl == control::none && !is_suite(sp.name) ? s_.out : s_.out / folder);
      for (const auto& t : result.tasks)
        res.per_task.push_back({{"task_id", t.task_id}, {"pass@1", t.score(1)}, {"pass@2", t.score(2)}});
    }
    return res;
  }

  // --save-tasks: the batch's rows as DIR/<split>/<row>.json, rows numbered from `first` as in
  // the per-row results (rows without a task, such as Sudoku's, are not written).
  void save_rows(const eval_rows& e, const std::string& split, index_t first) const {
    const fs::path dir = s_.save_tasks / split;
    ensure_output_dir(dir);
    for (index_t r = 0; r < e.valid && r < index_t(e.tasks.size()); ++r)
      etrm::data::save_arc_task(e.tasks[std::size_t(r)], dir / fmt::format("{:05d}.json", first + r));
  }

  // Fits each row's context offset (ETRM) or a copy of the weights on its task's leave-one-out
  // rows, then evaluates.
  etrm::step_metrics adapted_evaluate(const eval_rows& e, const T* weights, std::vector<std::int32_t>& pred,
                                      std::vector<T>& qh, etrm::data::arc_evaluator* ev) {
    if (index_t(e.tasks.size()) < e.valid)
      throw std::invalid_argument("test-time adaptation needs each row's task (few-shot tasks, or ARC with ETRM); the " +
                                  s_.spec.task + " rows of this model have none");
    if (s_.adapt == "weights") return weight_adapted_evaluate(e, weights, pred, qh, ev);
    if constexpr (is_etrm) {
      etrm::context_adapter<Model> tta(*tr_, {s_.adapt_steps, s_.adapt_lr > 0 ? s_.adapt_lr : 1e-2, s_.adapt_supervision});
      const auto delta = tta.fit(std::span(e.tasks).first(std::size_t(e.valid)), weights);
      std::vector<std::int32_t> slot(std::size_t(e.b.batch), -1);
      for (index_t r = 0; r < e.valid; ++r) slot[std::size_t(r)] = std::int32_t(r);
      return tta.evaluate(e.b, delta, slot, &pred, &qh, weights);
    } else {
      throw std::logic_error("context adaptation of a model without context tokens");  // run() refuses it
    }
  }

  // Row r is answered by a copy of the weights fitted to task r alone, which answers the query
  // under --adapt-votes augmentations (etrm::task_solver); the answers vote as on ARC and the
  // winner is row r's prediction. An ARC split's evaluator (`ev`) gets every one of those
  // answers, so its pass@2 has the runner-up too. The metrics are the mean over the valid rows.
  etrm::step_metrics weight_adapted_evaluate(const eval_rows& e, const T* weights, std::vector<std::int32_t>& pred,
                                             std::vector<T>& qh, etrm::data::arc_evaluator* ev) {
    const index_t B = e.b.batch, L = s_.spec.cfg.seq_len;
    const int side = etrm::task_shape(*model_, 0).side;
    etrm::task_solver<Model> solver(*tr_, solving(s_.adapt_votes));
    pred.assign(std::size_t(B * L), 0);
    qh.assign(std::size_t(B), T(0));
    etrm::step_metrics mean;
    for (index_t r = 0; r < e.valid; ++r) {
      const auto s = solver.solve(e.tasks[std::size_t(r)], weights, ev);
      // reported: the unaugmented query's loss and halting
      qh[std::size_t(r)] = s.identity_q_halt.at(0);
      mean.lm_loss += s.first_batch.lm_loss / double(e.valid);
      if (s.first_batch.count > 0) {
        mean.q_halt_accuracy += s.first_batch.q_halt_accuracy;
        ++mean.count;
      }
      const auto& ranked = s.result.pairs.at(0).ranked;
      if (!ranked.empty())
        etrm::data::encode_grid(ranked[0].prediction, {}, std::span(pred).subspan(std::size_t(r * L), std::size_t(L)), side);
    }
    if (mean.count) mean.q_halt_accuracy /= double(mean.count);
    return mean;
  }

  // Test-time training of the weights answers each query under --adapt-votes augmentations of
  // its own and adds those answers to the split's evaluator itself, so its split has one row per
  // query and the rows' answers are not added again.
  bool votes_itself(control c) const { return c == control::adapted && s_.adapt == "weights"; }

  // Answering one task: `votes` augmentations per test input, after --adapt-steps of test-time
  // training of the weights (if any), by default on augmented copies of the demos only when there
  // is a vote: the copies make the fit ~8x dearer and are only needed to answer augmented queries.
  etrm::solve_options solving(int votes) const {
    return {.votes = std::max(1, votes),
            .seed = s_.spec.seed,
            .adapt = {.steps = s_.adapt_steps,
                      .lr = s_.adapt_lr > 0 ? s_.adapt_lr : 3e-3,
                      .supervision_steps = s_.adapt_supervision,
                      .seed = s_.spec.seed,
                      .augment = s_.adapt_augment.value_or(votes > 1),
                      .skip_solved = s_.adapt_skip_solved}};
  }

  std::vector<split_result> evaluate_all(data_provider& p, jsonl_log& log, index_t step, double elapsed,
                                         bool with_controls, bool print) {
    std::vector<split_result> all;
    const T* weights = tr_->eval_parameters();
    std::vector<std::string> names = s_.splits.empty() ? p.split_names() : s_.splits;
    if (s_.external)
      for (const auto& name : available_suites(s_.spec))
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    for (const auto& name : names) {
      std::vector<control> ctls{control::none};
      if (is_etrm && with_controls && s_.controls && (s_.spec.task == "fewshot" || is_suite(name)))
        ctls.insert(ctls.end(), {control::no_demos, control::wrong_demos});
      if (with_controls && s_.adapt_steps > 0) ctls.push_back(control::adapted);
      const std::size_t unadapted = all.size();  // this split's control::none result
      for (control c : ctls) {
        const auto t0 = std::chrono::steady_clock::now();
        const int augmentations = votes_itself(c) ? 1 : s_.augmentations;
        // Batches of the trainer's rows (a rank's share of the global batch) that cover the rows
        // of eval_batches global batches.
        const index_t ranks = s_.comm.size(), batches = s_.spec.eval_batches * ranks;
        eval_split sp = is_suite(name) ? scored_split(s_.spec, name, suite_tasks(s_.spec, name, std::size_t(s_.generator_tasks)),
                                                      tr_->batch(), augmentations)
                                       : p.split(name, tr_->batch(), batches, augmentations);
        split_result res = run_split(p, std::move(sp), c,
                                     weights, print, print && !s_.svg.empty() && name == names.back() ? &pictures_ : nullptr);
        if (c == control::adapted && res.arc.is_null())  // a voting split has its own pass@2
          res.pass2_with_unadapted = either_exact(all[unadapted].per_task, res.per_task);
        json j = described(res);
        j["type"] = "eval";
        j["step"] = step;
        j["elapsed_s"] = elapsed;
        j["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log.write(j);
        if (!print && lead())
          fmt::print("  eval {:<24} step {:>6}: exact {:6.2f}%  accuracy {:6.2f}%  ({} rows){}\n", res.name, step,
                     100 * res.exact, 100 * res.accuracy, res.rows,
                     res.collapse ? fmt::format("  context spread {:.3f}  demo dependence {:.3f}",
                                                res.collapse->context_spread, res.collapse->demo_dependence)
                                  : "");
        all.push_back(std::move(res));
      }
    }
    if (print && lead()) print_table(all);
    std::fflush(stdout);
    return all;
  }

  // A split's results with what the tables must say about the run: whether per-task priors were
  // on, whether the evaluated tasks' demos were in training (ARC), and the training steps.
  json described(const split_result& r) const {
    json j = r.summary();
    j["priors"] = priors_on(s_.spec);
    j["eval_demos_in_training"] = s_.spec.task == "arc" && s_.spec.model == "etrm" && s_.spec.eval_demos_in_training;
    j["parameters"] = model_->layout().count();
    return j;
  }

  // The share of rows that either result answers exactly, when both hold the same single-answer
  // rows (a voting split's rows are tasks, scored with its own pass@2).
  static std::optional<double> either_exact(const std::vector<json>& a, const std::vector<json>& b) {
    if (a.empty() || a.size() != b.size() || !a[0].contains("exact")) return std::nullopt;
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) n += a[i].at("exact").get<bool>() || b[i].at("exact").get<bool>();
    return double(n) / double(a.size());
  }

  static void print_table(const std::vector<split_result>& all) {
    fmt::print("\n{:<26} {:>7} {:>9} {:>10} {:>10} {:>9}\n", "split", "rows", "loss", "accuracy", "exact", "q_halt");
    fmt::print("{:-<26} {:->7} {:->9} {:->10} {:->10} {:->9}\n", "", "", "", "", "", "");
    for (const auto& r : all) {
      fmt::print("{:<26} {:>7} {:>9.4f} {:>9.2f}% {:>9.2f}% {:>8.2f}%\n", r.name, r.rows, r.loss, 100 * r.accuracy,
                 100 * r.exact, 100 * r.q_halt_accuracy);
      if (r.collapse)
        fmt::print("{:<26} context spread across tasks {:.3f}, demo dependence {:.3f} (collapse: near 0)\n", "",
                   r.collapse->context_spread, r.collapse->demo_dependence);
      if (!r.arc.is_null())
        fmt::print("{:<26} pass@1 {:.2f}%  pass@2 {:.2f}%  ({} tasks, {} answered{})\n", "",
                   100 * r.arc.value("ARC/pass@1", 0.0), 100 * r.arc.value("ARC/pass@2", 0.0), r.arc.value("tasks", 0),
                   r.arc.value("answered_tasks", 0), r.fitting >= 0 ? fmt::format(", {} fit the canvas", r.fitting) : "");
      if (r.pass2_with_unadapted)
        fmt::print("{:<26} pass@2 {:.2f}% (the unadapted answer as the second attempt)\n", "",
                   100 * *r.pass2_with_unadapted);
    }
    fmt::print("\n");
  }

  void load_weights() {
    etrm::load_model_checkpoint(s_.checkpoint, ctx_, *model_, tr_->parameters().data());
  }

  int eval() {
    ensure_output_dir(s_.out);
    auto provider = make_provider(s_.spec);
    build(s_.spec.batch_size);
    load_weights();
    tr_->reset_ema();
    jsonl_log log(s_.out / "eval.jsonl", false);
    const auto all = evaluate_all(*provider, log, 0, 0, true, true);
    json summary = json::array();
    for (const auto& r : all) {
      summary.push_back(described(r));
      std::string file = "eval_" + r.name + ".jsonl";
      std::replace(file.begin(), file.end(), '/', '.');
      jsonl_log per(s_.out / file, false);
      for (const auto& t : r.per_task) per.write(t);
    }
    etrm::io::write_file_atomic(s_.out / "eval.json", summary.dump(2) + "\n");
    if (!s_.svg.empty() && !pictures_.empty()) {
      etrm::data::svg_figure fig(fmt::format("{} ({}) on {}: demos, query, prediction, truth", s_.spec.model,
                                             s_.spec.task, s_.splits.empty() ? "held-out rules" : s_.splits.back()));
      json pics = json::array();  // the same, as data for tools/render_grids.py
      for (const auto& [t, p] : pictures_) {
        fig.add_task(t, {p});
        json demos = json::array();
        for (const auto& d : t.train) demos.push_back({etrm::data::arc_json(d.input), etrm::data::arc_json(d.output)});
        pics.push_back({{"task_id", t.id},
                        {"demos", demos},
                        {"input", etrm::data::arc_json(t.test[0].input)},
                        {"prediction", etrm::data::arc_json(p)},
                        {"truth", etrm::data::arc_json(t.test[0].output)}});
      }
      etrm::data::save_svg(fig.str(), s_.svg);
      fs::path pj = s_.svg;
      etrm::io::write_file_atomic(pj.replace_extension(".json"), pics.dump() + "\n");
      fmt::print("pictures of {} predictions: {}\n", pictures_.size(), s_.svg.string());
    }
    fmt::print("results: {}\n", (s_.out / "eval.json").string());
    return 0;
  }

  // ---- solve ARC tasks: one file, or every .json below a folder ------------------------------

  int solve() {
    if (!is_etrm && s_.adapt_steps <= 0)
      throw std::invalid_argument("solve with a TRM checkpoint needs --adapt-steps: a TRM has no embedding for an unseen task, "
                                  "only test-time training on its demos");
    if (!s_.out.empty()) ensure_output_dir(s_.out);
    // One file: a grid that does not fit the canvas is an error. A folder: such a task keeps
    // the demos that fit, or gets no answer (attempts [[0]]) when its test inputs do not fit.
    const bool folder = fs::is_directory(s_.task_file);
    const auto tasks = folder ? etrm::data::load_arc_tasks(s_.task_file)
                              : std::vector<etrm::data::task>{etrm::data::load_arc_task(s_.task_file)};
    build(s_.spec.batch_size);
    load_weights();
    etrm::solve_options o = solving(s_.augmentations);
    o.adapt_losses = true;
    etrm::task_solver<Model> solver(*tr_, o);
    const etrm::data::episode_shape shape = etrm::task_shape(*model_, 0);
    etrm::data::evaluation_result all;
    etrm::data::svg_figure fig("etrm solve: " + (folder ? s_.task_file.string() : tasks.at(0).id));
    std::size_t pictured = 0, scored = 0;
    double pass1 = 0, pass2 = 0;
    for (const auto& t : tasks) {
      const auto part = folder ? etrm::answerable_part(t, shape) : std::optional(t);
      etrm::data::task_result tres{t.id, std::vector<etrm::data::test_pair_result>(t.test.size())};
      std::string fit;
      if (part) {
        const auto solved = solver.solve(*part, tr_->parameters().data(), nullptr, folder ? t.id : s_.task_file.string());
        tres = solved.result;
        if (s_.adapt_steps > 0)
          fit = solved.adapt_losses.empty()
                    ? "test-time training: skipped, the task has fewer than two demos to hold one out"
                    : fmt::format("test-time training: {} steps on the demos, leave-one-out loss {:.4f} -> {:.4f}",
                                  s_.adapt_steps, solved.adapt_losses.front(), solved.adapt_losses.back());
      }
      const bool known = !t.test.empty() && std::all_of(t.test.begin(), t.test.end(), [](const auto& p) { return p.output.rows > 0; });
      if (known) {  // an unanswered task counts as unsolved
        ++scored;
        pass1 += tres.score(1);
        pass2 += tres.score(2);
      }
      if (folder)
        print_solved_line(t, tres, part.has_value(), known, fit);
      else
        print_solved_task(t, tres, fit);
      if (!s_.svg.empty() && pictured < std::size_t(s_.svg_examples)) {
        std::vector<std::optional<etrm::data::grid>> best;
        for (const auto& pr : tres.pairs) best.push_back(pr.ranked.empty() ? std::nullopt : std::optional(pr.ranked[0].prediction));
        fig.add_task(t, best);
        ++pictured;
      }
      all.tasks.push_back(std::move(tres));
    }
    if (folder)
      fmt::print("{} tasks, {} answered; with known answers ({}): pass@1 {:.2f}%, pass@2 {:.2f}%\n", tasks.size(),
                 all.answered_tasks(), scored, scored ? 100 * pass1 / double(scored) : 0.0, scored ? 100 * pass2 / double(scored) : 0.0);
    if (!s_.out.empty())
      etrm::io::write_file_atomic(s_.out / "submission.json", all.submission_json(2).dump() + "\n");
    if (!s_.svg.empty()) {
      etrm::data::save_svg(fig.str(), s_.svg);
      fmt::print("picture: {}\n", s_.svg.string());
    }
    return 0;
  }

  // One task of a folder: a line with its best answers' votes and, if known, whether solved.
  void print_solved_line(const etrm::data::task& t, const etrm::data::task_result& r, bool answered, bool known,
                         const std::string& fit) const {
    if (!answered) {
      fmt::print("{}: not answered (a test input or every demo is larger than the canvas side {})\n", t.id,
                 etrm::task_shape(*model_, 0).side);
      return;
    }
    std::string votes;
    for (const auto& p : r.pairs) votes += fmt::format("{}{}", votes.empty() ? "" : ", ", p.ranked.empty() ? 0 : p.ranked[0].count);
    fmt::print("{}: {} test input(s), attempt_1 votes {}{}{}\n", t.id, t.test.size(), votes,
               known ? fmt::format(", pass@2 {}/{}", std::count_if(r.pairs.begin(), r.pairs.end(), [](const auto& p) { return p.pass(2); }),
                                   r.pairs.size())
                     : "",
               fit.empty() ? "" : "; " + fit);
  }

  // The one task of a file: both attempts of every test input, and the truth where known.
  void print_solved_task(const etrm::data::task& t, const etrm::data::task_result& r, const std::string& fit) const {
    if (!fit.empty()) fmt::print("{}\n", fit);
    for (std::size_t q = 0; q < r.pairs.size(); ++q) {
      const auto& pr = r.pairs[q];
      fmt::print("test {}: {} distinct predictions over {} augmentations\n", q + 1, pr.ranked.size(),
                 std::max(1, s_.augmentations));
      for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t i = k < pr.ranked.size() ? k : 0;
        fmt::print("attempt_{} ({} votes):\n{}", k + 1, pr.ranked.empty() ? 0 : pr.ranked[i].count,
                   etrm::data::grid_text(pr.ranked.empty() ? etrm::data::grid(1, 1) : pr.ranked[i].prediction));
      }
      if (t.test[q].output.rows > 0)
        fmt::print("truth:\n{}{}\n", etrm::data::grid_text(t.test[q].output),
                   pr.pass(1) ? "attempt_1 is correct" : pr.pass(2) ? "attempt_2 is correct" : "not solved");
    }
  }

  // ---- infer: every supervision step's outputs ----------------------------------------------

  int infer() {
    const auto in = etrm::io::safetensors_file::load(s_.input);
    const auto& c = s_.spec.cfg;
    std::optional<infer_context_shape> demos;
    if constexpr (is_etrm) demos = infer_context_shape{s_.spec.enc.max_demos, s_.spec.enc.pair_len()};
    const etrm::token_batch b = read_infer_input(in, c, demos);
    const index_t B = b.batch;
    build(B);
    load_weights();
    const index_t N = s_.infer_steps > 0 ? s_.infer_steps : c.halt_max_steps;
    const index_t S = c.full_len(), P = c.prefix_len(), V = c.vocab_size, L = c.seq_len;
    std::vector<float> logits_out, qh_out, qc_out;
    logits_out.reserve(std::size_t(N * B * L * V));
    std::vector<T> logits(std::size_t(B * S * V)), q(std::size_t(2 * B));
    tr_->upload(b);
    tr_->run_steps(tr_->parameters().data(), N, logits.data(), q.data(), [&](index_t, const T* lg, const T* qq) {
      const auto hl = etrm::to_host<C>(ctx_, lg, B * S * V);
      const auto hq = etrm::to_host<C>(ctx_, qq, 2 * B);
      for (index_t r = 0; r < B; ++r)
        logits_out.insert(logits_out.end(), hl.begin() + (r * S + P) * V, hl.begin() + (r * S + S) * V);
      for (index_t r = 0; r < B; ++r) qh_out.push_back(hq[std::size_t(2 * r)]);
      for (index_t r = 0; r < B; ++r) qc_out.push_back(hq[std::size_t(2 * r + 1)]);
    });
    etrm::io::safetensors_writer w;
    w.add_f32("logits", {N, B, L, V}, logits_out);
    w.add_f32("q_halt", {N, B}, qh_out);
    w.add_f32("q_continue", {N, B}, qc_out);
    w.set_metadata("config", json(c).dump());
    w.set_metadata("checkpoint", s_.checkpoint.string());
    w.save(s_.output);
    fmt::print("wrote {} supervision steps x {} rows to {}\n", N, B, s_.output.string());
    return 0;
  }

  session& s_;
  etrm::context_t<C> ctx_;
  tbb::global_control global_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<etrm::trainer<Model>> tr_;
  std::vector<std::pair<etrm::data::task, etrm::data::grid>> pictures_;
};

template <class Mixer>
using trm_cpu_model = etrm::trm_model<C, float, Mixer, etrm::dynamic_recursion, etrm::puzzle_id_prefix>;
template <class Mixer>
using etrm_cpu_model =
    etrm::trm_model<C, float, Mixer, etrm::dynamic_recursion, etrm::demo_encoder_policy<>::template type>;

}  // namespace etrm_cli

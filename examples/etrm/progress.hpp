// SPDX-License-Identifier: Apache-2.0
// Training progress: a one-line bar with rate, ETA and live loss/accuracy when stdout is a
// terminal, plain lines (one per logged step, at most every few seconds) otherwise.
#pragma once

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace etrm_cli {

class progress_display {
 public:
  progress_display(bool enabled, long long total_steps, double budget_s, long long first_step)
      : tty_(enabled && ::isatty(::fileno(stdout))), total_(total_steps), budget_(budget_s), first_(first_step) {}

  // A logged step: refresh the live values.
  void update(long long step, double t, const nlohmann::json& m) {
    loss_ = m.value("loss", 0.0);
    acc_ = m.value("accuracy", 0.0);
    exact_ = m.value("exact_accuracy", 0.0);
    rate_ = double(step - first_) / std::max(1e-9, t);
    if (tty_) {
      draw(step, t);
    } else if (t - last_plain_ >= 5.0 || step == total_ || last_plain_ < 0) {
      fmt::print("step {:>7}{}  loss {:.4f}  acc {:5.1f}%  exact {:5.1f}%  {:.2f} steps/s  {:.0f}s{}\n", step,
                 total_ > 0 ? fmt::format("/{}", total_) : std::string(), loss_, 100 * acc_, 100 * exact_, rate_, t,
                 eta(step, t));
      std::fflush(stdout);
      last_plain_ = t;
    }
  }
  void tick(long long step, double t, double loss) {
    loss_ = loss;
    rate_ = double(step - first_) / std::max(1e-9, t);
    if (tty_ && t - last_draw_ > 0.2) draw(step, t);
  }
  void clear() {
    if (tty_ && drawn_) {
      fmt::print("\r{:<110}\r", "");
      std::fflush(stdout);
      drawn_ = false;
    }
  }

 private:
  std::string eta(long long step, double t) const {
    double left = -1;
    if (total_ > 0 && rate_ > 0) left = double(total_ - step) / rate_;
    if (budget_ > 0) left = left < 0 ? budget_ - t : std::min(left, budget_ - t);
    if (left < 0) return "";
    return fmt::format("  ETA {}:{:02d}", int(left) / 60, int(left) % 60);
  }
  void draw(long long step, double t) {
    double frac = 0;
    if (total_ > 0) frac = double(step) / double(total_);
    if (budget_ > 0) frac = std::max(frac, t / budget_);
    frac = std::clamp(frac, 0.0, 1.0);
    const int width = 28, filled = int(frac * width);
    fmt::print("\r[{}{}] {:>3.0f}% step {}  {:.2f} it/s{}  loss {:.4f}  acc {:.1f}%  exact {:.1f}%   ",
               std::string(std::size_t(filled), '#'), std::string(std::size_t(width - filled), '.'), 100 * frac, step,
               rate_, eta(step, t), loss_, 100 * acc_, 100 * exact_);
    std::fflush(stdout);
    last_draw_ = t;
    drawn_ = true;
  }

  bool tty_;
  long long total_;
  double budget_;
  long long first_;
  double loss_ = 0, acc_ = 0, exact_ = 0, rate_ = 0;
  double last_plain_ = -1, last_draw_ = -1;
  bool drawn_ = false;
};

}  // namespace etrm_cli

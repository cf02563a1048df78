// SPDX-License-Identifier: Apache-2.0
// Rotary tables: the 2-D table turns a query and a key by the row and column offset between their
// cells, the same wherever the pair sits on the canvas; the prefix is not turned.
#include <doctest/doctest.h>
#include <etrm/etrm.hpp>

#include <cmath>
#include <numbers>

using namespace etrm;

namespace {

// The angle of frequency pair i at position p, in (−π, π].
double angle_at(const rope_table<double, reference_device>& t, index_t hd, index_t p, index_t i) {
  return std::atan2(t.sin.data()[p * hd + i], t.cos.data()[p * hd + i]);
}

double wrapped(double a) { return std::remainder(a, 2 * std::numbers::pi); }

}  // namespace

TEST_CASE("rope2d: an offset (dr, dc) is the same rotation anywhere on the canvas") {
  context_t<reference_device> ctx;
  const index_t prefix = 2, side = 5, hd = 8;
  const auto t = rope_table<double, reference_device>::grid(ctx, prefix, side, hd, 100.0);
  const auto cell = [&](index_t r, index_t c) { return prefix + r * side + c; };
  for (index_t i = 0; i < hd; ++i) {
    for (index_t p = 0; p < prefix; ++p) CHECK(t.cos.data()[p * hd + i] == 1.0);
    // (0,0)→(1,2) against (3,2)→(4,4): the same offset, the same change of angle.
    const double a = wrapped(angle_at(t, hd, cell(1, 2), i) - angle_at(t, hd, cell(0, 0), i));
    const double b = wrapped(angle_at(t, hd, cell(4, 4), i) - angle_at(t, hd, cell(3, 2), i));
    CHECK(a == doctest::Approx(b).epsilon(1e-9));
    // Pairs i mod hd/2 < hd/4 follow the row: a move along the row leaves them alone; the others the column.
    const double along_row = wrapped(angle_at(t, hd, cell(2, 4), i) - angle_at(t, hd, cell(2, 1), i));
    const double along_column = wrapped(angle_at(t, hd, cell(4, 1), i) - angle_at(t, hd, cell(1, 1), i));
    if (i % (hd / 2) < hd / 4) {
      CHECK(along_row == doctest::Approx(0.0));
      CHECK(along_column != doctest::Approx(0.0));
    } else {
      CHECK(along_column == doctest::Approx(0.0));
      CHECK(along_row != doctest::Approx(0.0));
    }
  }
  // The 1-D table turns a row move (side positions) and a column move (1 position) differently,
  // and its turn between two cells depends on the canvas width.
  const rope_table<double, reference_device> flat(ctx, prefix + side * side, hd, 100.0);
  CHECK(angle_at(flat, hd, cell(1, 0), 0) != doctest::Approx(angle_at(flat, hd, cell(0, 1), 0)));
}

TEST_CASE("rope2d needs a square canvas and a head dimension divisible by 4") {
  trm_config c;
  c.pos_encodings = pos_encoding::rope2d;
  c.seq_len = 81;
  c.hidden_size = 64, c.num_heads = 4;  // head 16
  CHECK_NOTHROW(c.validate());
  CHECK(c.canvas_side() == 9);
  c.seq_len = 80;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("square canvas"), std::invalid_argument);
  c.seq_len = 81, c.hidden_size = 24, c.num_heads = 4;  // head 6
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("divisible by 4"), std::invalid_argument);
  CHECK(pos_encoding_from_string(to_string(pos_encoding::rope2d)) == pos_encoding::rope2d);
}

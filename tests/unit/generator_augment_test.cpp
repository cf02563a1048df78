// SPDX-License-Identifier: Apache-2.0
// Augmentation against the generator's split (generator_augment.hpp): the rule an augmented
// task shows is computed right (checked on grids), augmentations that would show a held-out
// rule are recognised, and the training episode stream never shows one.
#include <etrm/data/episode.hpp>
#include <etrm/data/generator_augment.hpp>

#include <doctest/doctest.h>

namespace d = etrm::data;

TEST_CASE("split_image is the rule an augmented task shows, for the families the split reads") {
  const d::family families[] = {d::family::color_map, d::family::fill_enclosed, d::family::dihedral,
                                d::family::translate, d::family::scale_up,      d::family::tile};
  d::data_rng rng(5);
  int checked = 0;
  for (int i = 0; i < 600; ++i) {
    const d::rule_step s = d::sample_step(families[i % 6], rng);
    const d::augmentation a = d::augmentation_draw({77, 1}, std::uint64_t(i));
    const d::rule_step image = d::detail::split_image(s, a);
    for (int k = 0; k < 3; ++k) {
      const d::grid in = d::make_step_input(s, rng, 5 + k % 2, 6);
      // augmenting r's pair = r' on the augmented input
      CHECK(d::apply(a, d::apply_step(s, in)) == d::apply_step(image, d::apply(a, in)));
      ++checked;
    }
  }
  CHECK(checked == 1800);
}

TEST_CASE("augmentations that turn a training rule into a held-out one are recognised") {
  // dihedral 6 seen through a quarter turn is dihedral 7 (held out)
  d::augmentation quarter;
  quarter.dihedral = 1;
  const d::rule transpose{{d::family::dihedral, {6}}, std::nullopt};
  REQUIRE_FALSE(d::is_held_out(transpose));
  CHECK(d::shows_held_out(transpose, quarter));
  CHECK_FALSE(d::shows_held_out(transpose, d::augmentation{}));
  // colour map 1>5 under the permutation 1→2, 5→8: 2>8 with (2 + 2·8) % 9 == 0
  d::augmentation recolour;
  std::swap(recolour.colours[1], recolour.colours[2]);
  std::swap(recolour.colours[5], recolour.colours[8]);
  const d::rule one_to_five{{d::family::color_map, {2, 1, 3, 0, 5, 4, 0}}, std::nullopt};
  REQUIRE_FALSE(d::is_held_out(one_to_five));
  CHECK(d::shows_held_out(one_to_five, recolour));
  // a shift (2, 1) transposed is the reserved (1, 2), also as the second step of a composition
  d::augmentation transposing;
  transposing.dihedral = 6;
  const d::rule shift{{d::family::gravity, {0}}, d::rule_step{d::family::translate, {2, 1}}};
  REQUIRE_FALSE(d::is_held_out(shift));
  CHECK(d::shows_held_out(shift, transposing));
}

TEST_CASE("the augmented training episode stream never shows a held-out rule") {
  d::generator_config g;
  g.min_side = 2;
  g.max_side = 5;
  const d::episode_source src(d::rule_split::train, 3, {6, 3}, g);
  int rejected = 0;
  for (std::uint64_t i = 0; i < 400; ++i) {
    const auto [t, demos] = src.episode(i);
    // The episode's attempt number is in its id; its rule and augmentation are regenerated.
    const std::uint64_t draw = std::stoull(t.id.substr(t.id.rfind(':') + 1));
    const auto [r, plain] = d::sample_rule_and_task(d::rule_split::train, 3, draw, g);
    const d::augmentation a = d::augmentation_draw({3, 0xE915}, draw);
    CHECK(t.train[0] == d::apply(a, plain.train[0]));
    CHECK_FALSE(d::shows_held_out(r, a));
    rejected += int(draw - i * 1000);
  }
  MESSAGE("draws passed over in 400 episodes (held-out images or canvas misfits): " << rejected);
  // Without the rejection the stream would show held-out rules: the check above is not vacuous.
  int would_show = 0;
  for (std::uint64_t i = 0; i < 400; ++i) {
    const auto [r, plain] = d::sample_rule_and_task(d::rule_split::train, 3, i * 1000, g);
    would_show += d::shows_held_out(r, d::augmentation_draw({3, 0xE915}, i * 1000));
  }
  CHECK(would_show > 0);
}

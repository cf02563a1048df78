// SPDX-License-Identifier: Apache-2.0
// What a cell sees along each of the 8 directions: the first token that is not black (ARC colour
// 0, the generator's and most ARC tasks' background), or PAD past the canvas. Inside a grid that
// is the nearest coloured cell in that direction, or the grid's EOS border where there is none,
// so "a pixel of colour c somewhere to my left" or "the same colour above and below me" is a
// property of the cell itself rather than a relation across the grid. Next to a coloured cell
// the ray stops at once, so the 3×3 neighbourhood of a cell inside a shape is kept too.
#pragma once

#include <etrm/core/config.hpp>
#include <etrm/data/arc_tokens.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

// The 8 directions (row, column steps), in the order of the encoder's neighbour tables.
inline constexpr int neighbour_dr[8] = {-1, -1, -1, 0, 0, 1, 1, 1}, neighbour_dc[8] = {-1, 0, 1, -1, 1, -1, 0, 1};

// out[d, n, r, c] = the first token != black met stepping from (r, c) by (neighbour_dr[d],
// neighbour_dc[d]) on canvas n, PAD (0) when the canvas ends first.   grids: [N, G, G]; out: [8, N, G, G]
inline void ray_tokens(const std::int32_t* grids, index_t N, int G, std::int32_t* out) {
  const index_t GG = index_t(G) * G, n = N * GG;
  for (index_t g = 0; g < N; ++g) {
    const std::int32_t* canvas = grids + g * GG;
    for (int d = 0; d < 8; ++d)
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < G; ++c) {
          std::int32_t seen = arc_pad_token;
          for (int i = r + neighbour_dr[d], j = c + neighbour_dc[d]; i >= 0 && j >= 0 && i < G && j < G;
               i += neighbour_dr[d], j += neighbour_dc[d])
            if (const std::int32_t t = canvas[i * G + j]; t != arc_first_colour_token) {
              seen = t;
              break;
            }
          out[d * n + g * GG + r * G + c] = seen;
        }
  }
}

}  // namespace data
ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// The token ids of ARC's canvas encoding (arc_encoding.hpp): PAD, EOS, then colour c as c + 2.
#pragma once

#include <etrm/core/config.hpp>

#include <cstdint>

ETRM_BEGIN_NAMESPACE
namespace data {

inline constexpr std::int32_t arc_pad_token = 0;
inline constexpr std::int32_t arc_eos_token = 1;
inline constexpr std::int32_t arc_first_colour_token = 2;

}  // namespace data
ETRM_END_NAMESPACE

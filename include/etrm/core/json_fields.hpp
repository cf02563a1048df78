// SPDX-License-Identifier: Apache-2.0
// Reading one field of a configuration object from untrusted JSON. nlohmann converts a JSON
// float to an integer with a plain cast, undefined behaviour when the value does not fit (a
// config saying "hidden_size": 1e300); here an integer field takes a JSON integer, or a float
// with an integral value (YAML-converted configs write 512.0), within the field's range, and
// anything else is std::invalid_argument naming the field and the value.
#pragma once

#include <etrm/core/config.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <concepts>
#include <limits>
#include <stdexcept>
#include <string>

ETRM_BEGIN_NAMESPACE

// Sets `v` from j[key] when j has the key with a non-null value; keeps it otherwise.
template <class T>
void read_json_field(const nlohmann::json& j, const char* key, T& v) {
  if (!j.is_object()) throw std::invalid_argument(std::string("expected a JSON object holding '") + key + "'");
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if constexpr (std::integral<T> && !std::same_as<T, bool>) {
    using lim = std::numeric_limits<T>;
    const auto bad = [&] {
      return std::invalid_argument(std::string(key) + " must be an integer in [" + std::to_string(lim::min()) + ", " +
                                   std::to_string(lim::max()) + "], got " + it->dump());
    };
    if (it->is_number_unsigned()) {
      const auto u = it->template get<std::uint64_t>();
      if (u > std::uint64_t(lim::max())) throw bad();
      v = T(u);
    } else if (it->is_number_integer()) {
      const auto s = it->template get<std::int64_t>();
      if (s < 0 && (!lim::is_signed || s < std::int64_t(lim::min()))) throw bad();
      if (s > 0 && std::uint64_t(s) > std::uint64_t(lim::max())) throw bad();
      v = T(s);
    } else if (it->is_number_float()) {
      const double d = it->template get<double>();
      // double(lim::max()) + 1 is a power of two, exact: the bound is strict.
      if (!(d == std::floor(d) && d >= double(lim::min()) && d < double(lim::max()) + 1.0)) throw bad();
      v = T(d);
    } else {
      throw bad();
    }
  } else {
    it->get_to(v);
  }
}

ETRM_END_NAMESPACE

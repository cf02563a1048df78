// SPDX-License-Identifier: Apache-2.0
// The one exception type of the data modules: a file or record that cannot be used. Its message
// is a single line naming the file, the place inside it and the problem, so a log line is enough
// to find and fix the input.
#pragma once

#include <etrm/core/config.hpp>

#include <stdexcept>

ETRM_BEGIN_NAMESPACE
namespace data {

struct data_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace data
ETRM_END_NAMESPACE

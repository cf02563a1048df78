// SPDX-License-Identifier: Apache-2.0
// The one exception type of the io modules: a file that cannot be read, written or understood.
// Its message is a single line that names the file and what is wrong with it, so a log line is
// enough to find and fix the problem.
#pragma once

#include <etrm/core/config.hpp>
#include <stdexcept>

ETRM_BEGIN_NAMESPACE
namespace io {

struct io_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace io
ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// Reading files that come from anywhere with limits fixed before anything is allocated: a file's
// size is checked against a limit before it is read, and JSON nested deeper than any file etrm
// reads or writes is refused while it is parsed. Every refusal names the limit, so a user whose
// legitimate file is larger knows which limit to raise. The error type is the caller's
// (io_error for io/, data_error for data/); each message names the file.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <etrm/core/config.hpp>
#include <etrm/io/error.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

ETRM_BEGIN_NAMESPACE
namespace io {

// The deepest nesting of any JSON etrm reads (a safetensors header is 3 deep, an ARC task 5, a
// run description 4); nlohmann's parser is iterative, so this bounds memory, not the stack.
inline constexpr int json_max_depth = 32;

// The whole of `path`, refused with "'<path>': file is N bytes, more than the limit of M bytes for
// <what>" before any allocation when it is larger than `max_bytes`.
template <class Error = io_error>
std::string read_file_bounded(const std::filesystem::path& path, std::uint64_t max_bytes, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const auto cannot_read = [&](const char* why) { return Error("cannot read '" + path.string() + "': " + why); };
  if (fd < 0) throw cannot_read(std::strerror(errno));
  struct fd_closer {
    int fd;
    ~fd_closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw cannot_read(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw cannot_read(std::strerror(EISDIR));
  const auto too_large = [&](std::uint64_t size) {
    std::string message(1, '\'');
    message.append(path.string()).append("': file is ");
    if (!S_ISREG(st.st_mode)) message.append("at least ");
    message.append(std::to_string(size)).append(" bytes, more than the limit of ").append(std::to_string(max_bytes));
    message.append(" bytes for ").append(what);
    return Error(message);
  };
  if (S_ISREG(st.st_mode) && std::uint64_t(st.st_size) > max_bytes) throw too_large(std::uint64_t(st.st_size));
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(std::size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw cannot_read(std::strerror(errno));
    }
    if (n == 0) break;
    if (bytes.size() + std::size_t(n) > max_bytes) throw too_large(bytes.size() + std::size_t(n));  // a pipe, or a file that grew
    bytes.append(buf, std::size_t(n));
  }
  return bytes;
}

// Parses `text`; on failure calls `fail` (which must throw) with "invalid JSON: <parser message>"
// or "JSON nested deeper than <max_depth> levels".
template <class Fail>
nlohmann::json parse_json_bounded(std::string_view text, Fail&& fail, int max_depth = json_max_depth) {
  bool too_deep = false;
  const auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if (depth >= max_depth && (event == nlohmann::json::parse_event_t::object_start ||
                               event == nlohmann::json::parse_event_t::array_start)) {
      too_deep = true;
      throw std::length_error("too deep");  // unwinds the parser; reported below
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("invalid JSON: ") + e.what());
  } catch (const std::length_error&) {
    if (!too_deep) throw;
    fail("JSON nested deeper than " + std::to_string(max_depth) + " levels");
  }
  throw std::logic_error("parse_json_bounded: fail() returned");
}

}  // namespace io
ETRM_END_NAMESPACE

// SPDX-License-Identifier: Apache-2.0
// Crash-safe file replacement. The bytes go to `<path>.tmp.<pid>` in the target's directory, are
// flushed and fsync'ed, and only then renamed over the target (and the directory fsync'ed), so a
// reader ever sees either the complete old file or the complete new one. On any failure the
// temporary is removed, the old file is left untouched and an io_error names the path. POSIX only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <etrm/core/config.hpp>
#include <etrm/io/error.hpp>
#include <filesystem>
#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

ETRM_BEGIN_NAMESPACE
namespace io {

namespace detail {

[[noreturn]] inline void throw_write_error(const std::filesystem::path& path, int err, std::string_view what = {}) {
  std::string msg = "cannot write '" + path.string() + "': " + std::strerror(err);
  if (!what.empty()) msg += std::string(" (") + std::string(what) + ")";
  throw io_error(msg);
}

// Returns 0 or the errno of the failure; retries interrupted and partial writes.
inline int write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= std::size_t(n);
  }
  return 0;
}

// An ostream sink over a file descriptor that remembers the first errno instead of throwing from
// inside the stream machinery; the caller turns it into an io_error afterwards.
class fd_streambuf : public std::streambuf {
 public:
  explicit fd_streambuf(int fd) : fd_(fd), buffer_(1 << 16) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    // Large blocks (tensor payloads) bypass the buffer.
    if (n >= std::streamsize(buffer_.size())) {
      if (!flush_buffer()) return 0;
      if (int err = write_all(fd_, s, std::size_t(n))) {
        error_ = err;
        return 0;
      }
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    if (error_) return false;
    if (int err = write_all(fd_, pbase(), std::size_t(pptr() - pbase()))) {
      error_ = err;
      return false;
    }
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return true;
  }

  int fd_;
  int error_ = 0;
  std::vector<char> buffer_;
};

inline std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  return tmp;
}

// Without this the rename itself may be lost on power failure. Filesystems that cannot sync a
// directory (EINVAL) are tolerated: the file content is already durable.
inline void fsync_directory(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_write_error(path, errno, "opening its directory to sync it");
  int err = 0;
  if (::fsync(fd) != 0 && errno != EINVAL) err = errno;
  ::close(fd);
  if (err) throw_write_error(path, err, "syncing its directory");
}

// Owns the temporary until commit(); the destructor removes it if anything went wrong.
class temp_file {
 public:
  explicit temp_file(const std::filesystem::path& target) : target_(target), tmp_(temp_path_for(target)) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) throw_write_error(target_, errno);
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  int fd() const { return fd_; }

  void commit() {
    if (::fsync(fd_) != 0) throw_write_error(target_, errno);
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) throw_write_error(target_, errno);
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) throw_write_error(target_, errno);
    committed_ = true;
    fsync_directory(target_);
  }

 private:
  std::filesystem::path target_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace detail

// Replaces `path` with exactly `bytes`, atomically. Throws io_error
// "cannot write '<path>': <strerror>" when the directory is missing or not writable, the disk is
// full, etc.; the previous content of `path` is then unchanged.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  detail::temp_file tmp(path);
  if (int err = detail::write_all(tmp.fd(), bytes.data(), bytes.size())) detail::throw_write_error(path, err);
  tmp.commit();
}

// Streaming variant for content too large to assemble in memory first: `write` receives a stream
// onto the temporary file. If `write` throws, its exception propagates and the target is untouched.
inline void write_file_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  detail::temp_file tmp(path);
  detail::fd_streambuf buf(tmp.fd());
  std::ostream out(&buf);
  write(out);
  out.flush();
  if (buf.error()) detail::throw_write_error(path, buf.error());
  if (!out) throw io_error("cannot write '" + path.string() + "': the output stream failed");
  tmp.commit();
}

// A process killed in the middle of write_file_atomic leaves its `<path>.tmp.<pid>` behind (the
// target itself is intact). Removes those of `path` whose process no longer exists; returns how
// many. A temporary of a live process, another writer's, is left alone.
inline std::size_t remove_stale_temporaries(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string prefix = path.filename().string() + ".tmp.";
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = ::pid_t(std::stol(pid_text));
    if (pid == ::getpid() || (::kill(pid, 0) == 0 || errno != ESRCH)) continue;
    removed += fs::remove(entry.path(), ec) ? 1 : 0;
  }
  return removed;
}

}  // namespace io
ETRM_END_NAMESPACE

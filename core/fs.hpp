#pragma once
// Small POSIX file helpers with Result-based errors (no exceptions), for durable state under the data dir.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace sluice {

/// Owns a file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// An Error whose subject is `path` and whose message is `what` plus strerror(errno_value).
Error errno_error(const std::string& path, const std::string& what, int errno_value);

/// Writes `content` to `path` so that a crash leaves either the old or the new content, never a mix:
/// writes a temporary file beside it, fsyncs it, renames it over `path`, then fsyncs the directory.
Status write_file_atomic(const std::string& path, std::string_view content);

/// The whole content of a file.
Result<std::string> read_file(const std::string& path);

/// Creates `path` and its missing parents (like mkdir -p), fsyncing the parent of each directory it
/// creates so that the new entries survive a power cut. Succeeds if it already is a directory.
Status make_dirs(const std::string& path);

/// Takes an exclusive flock() on `dir`/LOCK (created if missing) for as long as the returned descriptor
/// is open. Fails with 409 and `held_message` when another descriptor (in any process) holds it.
Result<UniqueFd> lock_dir(const std::string& dir, const std::string& held_message);

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
Status fsync_dir(const std::string& dir);

/// The directory part of `path` ("." when it has none).
std::string parent_dir(const std::string& path);

/// Names (not paths) of the entries of `dir`, without "." and "..", unsorted.
Result<std::vector<std::string>> list_dir(const std::string& dir);

/// Removes a file; succeeds if it does not exist.
Status remove_file(const std::string& path);

/// write(2) until every byte is written, retrying on EINTR and short writes.
Status write_all(int fd, const void* data, std::size_t size, const std::string& path_for_errors);

/// pwrite(2) until every byte is written at `offset`.
Status pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                  const std::string& path_for_errors);

/// pread(2) until `size` bytes are read or end of file; returns the number of bytes read.
Result<std::size_t> pread_full(int fd, void* data, std::size_t size, std::uint64_t offset,
                               const std::string& path_for_errors);

}  // namespace sluice

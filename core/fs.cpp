#include "core/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace sluice {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Error errno_error(const std::string& path, const std::string& what, int errno_value) {
  return make_error(path, what + ": " + std::strerror(errno_value), 500);
}

Status write_all(int fd, const void* data, std::size_t size, const std::string& path_for_errors) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path_for_errors, "write failed", errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return ok();
}

Status pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                  const std::string& path_for_errors) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path_for_errors, "write failed", errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return ok();
}

Result<std::size_t> pread_full(int fd, void* data, std::size_t size, std::uint64_t offset,
                               const std::string& path_for_errors) {
  char* p = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, p + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path_for_errors, "read failed", errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(dir, "cannot open directory", errno);
  if (::fsync(fd.get()) != 0) return errno_error(dir, "fsync of directory failed", errno);
  return ok();
}

Status write_file_atomic(const std::string& path, std::string_view content) {
  static std::atomic<std::uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return errno_error(tmp, "cannot create", errno);
    if (auto st = write_all(fd.get(), content.data(), content.size(), tmp); !st) {
      ::unlink(tmp.c_str());
      return st;
    }
    if (::fsync(fd.get()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return errno_error(tmp, "fsync failed", e);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_error(path, "rename failed", e);
  }
  return fsync_dir(parent_dir(path));
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(path, "cannot open", errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(path, "read failed", errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Status make_dirs(const std::string& path) {
  if (path.empty()) return make_error(path, "empty directory path", 400);
  std::string prefix;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (::mkdir(prefix.c_str(), 0755) == 0) {
      if (auto st = fsync_dir(parent_dir(prefix)); !st) return st;
    } else if (errno != EEXIST) {
      return errno_error(prefix, "cannot create directory", errno);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(path, "cannot stat", errno);
  if (!S_ISDIR(st.st_mode)) return make_error(path, "exists and is not a directory", 400);
  return ok();
}

Result<UniqueFd> lock_dir(const std::string& dir, const std::string& held_message) {
  const std::string path = dir + "/LOCK";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno_error(path, "cannot open lock file", errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return make_error(dir, held_message, 409);
    return errno_error(path, "cannot lock", errno);
  }
  return fd;
}

Result<std::vector<std::string>> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno_error(dir, "cannot list directory", errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  return names;
}

Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error(path, "cannot remove", errno);
  return ok();
}

}  // namespace sluice

// How long fdatasync takes on a disk for the write patterns an event log may use: appends that grow the
// file, overwrites of space zero-filled ahead (what FileLog does), or of space reserved with
// posix_fallocate; with one or several threads each writing its own records and calling fdatasync.
//
//   fdatasync_pattern DIR THREADS grow|zero|fallocate|direct|direct-fdatasync [SECONDS]
//
// Prints fdatasyncs per second and the mean time of one.

#include <fcntl.h>
#include <unistd.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: fdatasync_pattern DIR THREADS grow|zero|fallocate [SECONDS]\n");
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/fdatasync_pattern.dat";
  const int threads = std::atoi(argv[2]);
  const std::string mode = argv[3];
  const int seconds = argc > 4 ? std::atoi(argv[4]) : 3;
  constexpr std::size_t kReserved = 256u << 20;
  constexpr std::size_t kRecord = 1200;  // about one group commit of two events

  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  auto zero_fill = [&] {
    const std::vector<char> zeros(1 << 20, 0);
    for (std::size_t at = 0; at < kReserved; at += zeros.size())
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(at)) < 0) return false;
    return true;
  };
  if (mode == "direct" || mode == "direct-fdatasync") {
    // Zero-filled like "zero", then written through O_DIRECT (and O_DSYNC, or an fdatasync after each
    // write) in whole 4 KiB blocks: each record rewrites the block it ends in, as a log that keeps its
    // tail block in memory would. One thread.
    if (!zero_fill()) return 1;
    ::fsync(fd);
    const bool dsync = mode == "direct";
    const int dfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT | (dsync ? O_DSYNC : 0));
    if (dfd < 0) {
      std::perror("O_DIRECT");
      return 1;
    }
    constexpr std::size_t kBlock = 4096;
    void* raw = nullptr;
    if (::posix_memalign(&raw, kBlock, 1 << 20) != 0) return 1;
    char* buf = static_cast<char*>(raw);
    std::memset(buf, 0, 1 << 20);
    std::size_t pos = 0;
    long syncs = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      const std::size_t start = pos / kBlock * kBlock;
      std::memset(buf + (pos - start), 'x', kRecord);
      pos += kRecord;
      const std::size_t len = (pos - start + kBlock - 1) / kBlock * kBlock;
      if (::pwrite(dfd, buf, len, static_cast<off_t>(start)) != static_cast<ssize_t>(len)) {
        std::perror("pwrite");
        return 1;
      }
      if (!dsync && ::fdatasync(dfd) != 0) return 1;
      ++syncs;
      // Keep the tail block at the front of the buffer.
      const std::size_t tail = pos / kBlock * kBlock;
      std::memmove(buf, buf + (tail - start), kBlock);
      std::memset(buf + kBlock, 0, kBlock);
    }
    ::close(dfd);
    ::close(fd);
    ::unlink(path.c_str());
    std::printf("mode=%s threads=1 fdatasyncs/s=%.0f mean_ms=%.3f\n", mode.c_str(),
                static_cast<double>(syncs) / seconds, 1000.0 * seconds / static_cast<double>(syncs));
    return 0;
  }
  if (mode == "zero") {
    if (!zero_fill()) return 1;
  } else if (mode == "fallocate") {
    if (::posix_fallocate(fd, 0, kReserved) != 0) return 1;
  } else if (mode != "grow") {
    std::fprintf(stderr, "mode must be grow, zero or fallocate\n");
    return 2;
  }
  ::fsync(fd);

  std::atomic<std::size_t> next{0};
  std::atomic<long> syncs{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      char record[kRecord];
      std::memset(record, 'x', sizeof record);
      while (!stop) {
        const std::size_t at = next.fetch_add(kRecord);
        if (::pwrite(fd, record, sizeof record, static_cast<off_t>(at)) < 0 || ::fdatasync(fd) != 0) return;
        ++syncs;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  ::close(fd);
  ::unlink(path.c_str());
  const double per_second = static_cast<double>(syncs) / seconds;
  std::printf("mode=%s threads=%d fdatasyncs/s=%.0f mean_ms=%.3f\n", mode.c_str(), threads, per_second,
              1000.0 * threads / per_second);
  return 0;
}

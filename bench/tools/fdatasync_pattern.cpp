// How long fdatasync takes on a disk for the write patterns an event log may use: appends that grow the
// file, overwrites of space zero-filled ahead (what FileLog does), or of space reserved with
// posix_fallocate; with one or several threads each writing its own records and calling fdatasync.
//
//   fdatasync_pattern DIR THREADS grow|zero|fallocate [SECONDS]
//
// Prints fdatasyncs per second and the mean time of one.

#include <fcntl.h>
#include <unistd.h>

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
  if (mode == "zero") {
    const std::vector<char> zeros(1 << 20, 0);
    for (std::size_t at = 0; at < kReserved; at += zeros.size())
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(at)) < 0) return 1;
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

// Preloaded ahead of libfaketime in the clock-jump test (tests/integration/clock_jump_test.cpp): passes
// timerfd_settime and timerfd_gettime straight to the kernel.
//
// libfaketime 0.9.10 shifts an absolute timerfd deadline by the faked wall-clock offset whatever the
// timer's clock, so after a jump back of three hours an absolute CLOCK_MONOTONIC deadline lands three
// hours ahead. Asio arms its reactor's CLOCK_MONOTONIC timerfd with the absolute deadline "1 ns" when a
// timer is already due, so under load every Asio timer of the faked process could stall: a harness
// artefact (a real jump of the wall clock moves no CLOCK_MONOTONIC deadline), not what the test is about.

#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

extern "C" {

int timerfd_settime(int fd, int flags, const struct itimerspec* new_value, struct itimerspec* old_value) {
  return static_cast<int>(::syscall(SYS_timerfd_settime, fd, flags, new_value, old_value));
}

int timerfd_gettime(int fd, struct itimerspec* curr_value) {
  return static_cast<int>(::syscall(SYS_timerfd_gettime, fd, curr_value));
}

}  // extern "C"

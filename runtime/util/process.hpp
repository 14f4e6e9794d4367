// Naming a process so that a reused pid is never mistaken for it, and acting on it
// through a pidfd. A pid alone is not a name: once its process has exited and been
// reaped, the kernel hands the number out again. The pair (pid, start time) is, and a
// pidfd opened while that pair still matches pins that very process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

#include "runtime/util/fd.hpp"

namespace sandlock::proc {

struct Identity {
    pid_t pid = 0;
    unsigned long long start_time = 0;  // /proc/PID/stat field 22, clock ticks since boot
    bool known() const { return pid > 0; }
};

// Start time of a process, or nullopt if it does not exist.
std::optional<unsigned long long> start_time(pid_t pid);
// True when the process exists and is not a zombie.
bool running(pid_t pid);

// pidfd_open(2); an empty fd when the process does not exist.
UniqueFd open_pidfd(pid_t pid);
// A pidfd of the process `id` names, or an empty fd when that process is gone (its pid
// may name another process by now: the start time is checked after the pidfd is opened).
UniqueFd open_pidfd(const Identity& id);
// The identity of the process behind a pidfd (pid is its number, as returned by whoever
// started it), or nullopt when it has already exited: the start time is read while the
// pidfd shows it alive, so it is that process's own.
std::optional<Identity> identify(int pidfd, pid_t pid);

bool send_signal(int pidfd, int sig);
// True once the pidfd's process has exited (a zombie has); false when `limit` passed.
bool wait_exit(int pidfd, std::chrono::milliseconds limit);

}  // namespace sandlock::proc

// Foreground `run` and `exec`: we stay, wait for the process, forward the
// signals we get to it, proxy its pty, and exit with its status.
#pragma once

#include <sys/types.h>

#include "runtime/util/fd.hpp"

namespace sandlock::container {

// Blocks the signals we forward, in the calling process, so none is lost
// between fork and the wait loop. Children must call unblock_all_signals().
void block_forwarded_signals();
void unblock_all_signals();
// Makes us the reaper of orphaned descendants (init is our grandchild).
void become_subreaper();

// Returns the exit code (128+signal for a signal) of pid.
int wait_foreground(pid_t pid, UniqueFd pty_master);

}  // namespace sandlock::container

// What init and exec'd processes share: the last steps before execve.
#pragma once

#include <string>
#include <vector>

#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

// Go's exec.LookPath against the process's own PATH: the error text is the
// one callers know ("exec: \"x\": executable file not found in $PATH").
std::string lookup_executable(const std::string& arg0, const std::vector<std::string>& env);

// Extra fds handed to the container: LISTEN_FDS from our environment
// (socket activation) followed by --preserve-fds. Returns their count.
int passed_fd_count(int preserve_fds);
// Environment additions for socket activation (LISTEN_FDS/LISTEN_PID).
void add_listen_env(std::vector<std::string>& env);
// Marks every fd >= 3 + count close-on-exec and clears it on the passed ones.
void prepare_inherited_fds(int count);

// fork() in a way that never returns into the caller's stack on the child
// side: the child runs fn and _exit()s with its status.
template <typename Fn>
pid_t fork_child(Fn&& fn);

// Duplicates fd number target_fd of process pid into ours (pidfd_getfd).
UniqueFd take_fd_from(pid_t pid, int target_fd);

[[noreturn]] void exec_process(const std::string& path, const spec::Process& process);

// The container process's exit status as a shell reports it (128+signal).
int exit_code_from_wait_status(int status);

}  // namespace sandlock::container

#include <unistd.h>
namespace sandlock::container {
template <typename Fn>
pid_t fork_child(Fn&& fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int code = fn();
        ::_exit(code);
    }
    return pid;
}
}  // namespace sandlock::container

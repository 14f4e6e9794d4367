// `exec`: run a new process inside a running container.
#pragma once

#include <string>
#include <vector>

#include "runtime/container/state.hpp"
#include "spec/config.hpp"

namespace sandlock::os {
class Kernel;  // runtime/linux/kernel.hpp
Kernel& real_kernel();
}  // namespace sandlock::os

namespace sandlock::container {

struct ExecOptions {
    std::string id;
    std::string process_file;
    std::vector<std::string> args;
    std::string cwd;
    std::vector<std::string> env;
    std::string user;  // "uid[:gid]"
    std::vector<uint32_t> additional_gids;
    std::vector<std::string> caps;
    bool tty = false;
    bool no_new_privs = false;
    bool detach = false;
    std::string pid_file;
    std::string console_socket;
    int preserve_fds = 0;
    std::string apparmor;       // --apparmor: process.apparmorProfile
    std::string process_label;  // --process-label: process.selinuxLabel
    std::string cgroup;         // --cgroup: a sub-cgroup, which is refused
};

// The process to run: --process FILE, or the container's own process with
// the flags applied (as runc does).
spec::Process build_exec_process(const spec::Config& cfg, const ExecOptions& opts);

// Runs the process in the container `st` as loaded with `status` (Container::exec checks
// that it may: can_exec()). Returns the exit code to exit with (0 when detached).
// Its processes are started and stopped through `kernel` (the seam tests replace).
int exec_in_container(const StateStore& store, const ContainerState& st, Status status, const ExecOptions& opts,
                      os::Kernel& kernel = os::real_kernel());

}  // namespace sandlock::container

// The container side of create (stage 1 and init) and of exec.
#pragma once

#include <functional>
#include <string>

#include "runtime/container/egress_setup.hpp"
#include "runtime/container/sync.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/linux/rootfs.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

struct InitContext {
    const spec::Config* cfg = nullptr;
    std::string rootfs;
    int fifo_fd = -1;
    int passed_fds = 0;
    bool no_pivot = false;
    bool no_new_keyring = false;
    std::string container_id;
    os::RootfsOptions rootfs_options;
    // Set when an egress policy applies. Not const: init, in its own copy of create's
    // memory after the fork, records there the mode create sends (EgressMode).
    EgressPlan* egress = nullptr;
};

// Reports a failure to the parent and ends the process: nothing in a forked
// child may unwind into the CLI code it was forked from.
[[noreturn]] void fail_to_parent(SyncSocket& sock, const std::string& message);

// Forks the container's process (run_child must not return) and sends InitPid
// with its pid. The child waits until InitPid is sent: it shares the socket,
// and the parent must always read InitPid before anything the child sends.
void fork_and_report_pid(SyncSocket& sock, const std::function<void()>& run_child);

// Stage 1: joins/creates namespaces, forks init, reports its pid, exits.
[[noreturn]] void run_stage1(SyncSocket& sock, os::NamespacePlan& plan, const InitContext& ctx);

// The steps init and exec'd processes share after their namespaces are set:
// Landlock and the egress filter (when egress is set), the OCI seccomp
// filter, identity, cwd; returns the resolved executable path.
std::string finish_process_setup(const spec::Process& process, const spec::Config& cfg,
                                 SyncSocket& sock, const EgressPlan* egress);

// With process.terminal: a pty from the container's devpts becomes our
// controlling terminal and stdio; its master goes to the parent.
void setup_console(const spec::Process& process, SyncSocket& sock, bool bind_dev_console);

// Hands a seccomp listener fd to the parent: the parent takes it with pidfd_getfd.
void report_seccomp_listener(SyncSocket& sock, int fd);

}  // namespace sandlock::container

// The parent's side of the create and exec conversations drawn in sync.hpp: one
// loop serves the child until Ready. The messages both share (Console, the
// listeners, Ready, Error) are handled here; a step of one protocol alone is a
// handler the caller supplies.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/container/state.hpp"
#include "runtime/container/sync.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

// One message of a protocol, in its place in the order.
struct ExpectedMessage {
    SyncType type;
    bool required = true;
};

struct ParentHandlers {
    // The messages the children send, in the order they send them, Ready last. Each
    // comes at most once; a required one may not be skipped. Error may come anywhere.
    std::vector<ExpectedMessage> order;
    // Where the pty master goes (--console-socket); without it, the caller keeps it.
    std::string console_socket;
    // The seccomp config whose listenerPath gets the process's listener, with the state
    // of `container` as `status` (read when the listener comes).
    const spec::Seccomp* seccomp = nullptr;
    const ContainerState* container = nullptr;
    Status status = Status::Creating;

    // The steps of one protocol. Each replies, if the message asks for one, once it returns.
    std::function<void(pid_t)> init_pid;
    std::function<void()> userns_ready;                     // -> UsernsMapped
    std::function<bool(bool makes_cgroup_ns)> join_cgroup;  // -> CgroupJoined(returned)
    std::function<void()> leave_cgroup;                     // -> CgroupLeft
    // After the cgroup step's last reply (CgroupJoined when not joined, else CgroupLeft).
    std::function<void()> after_cgroup_step;
    std::function<std::string()> run_hooks;      // -> HooksDone(returned state)
    // After HooksDone is sent: init sets up its root meanwhile.
    std::function<void()> after_hooks;
    std::function<void(UniqueFd)> egress_listener;  // the listener taken; -> EgressDone
};

struct Served {
    pid_t pid = -1;           // from InitPid
    UniqueFd console_master;  // a pty without a --console-socket
};

// Before anything is made: a pty needs a taker (--console-socket, or the caller when it
// stays in the foreground), and --console-socket a pty. runc's wording.
void check_console_destination(bool terminal, bool detached, const std::string& console_socket);

// Serves the child on sock until Ready. Throws sandlock::Error for an Error message, EOF,
// a malformed packet or one out of handlers.order.
Served serve_child(SyncSocket& sock, const ParentHandlers& handlers);

}  // namespace sandlock::container

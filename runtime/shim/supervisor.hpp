// The egress supervisor: serves the seccomp listeners of a container's processes.
// Leader/follower: the thread that receives a notification handles it (shim/
// on_behalf.hpp) itself, with no hand-off; an idle thread watches a leader whose call
// takes more than a millisecond and takes over receiving, so a connect that blocks for
// minutes never delays another notification (supervisor.cpp has the details).
// Bounded whatever the container does: at most 32 calls are served at once (more are
// answered EAGAIN at once, counted as busy), a stream send copies at most 256 KiB, a
// datagram at most 64 KiB (a unix one 256 KiB), and the shim's own connects and sends
// never wait past the caller's notification (on_behalf.cpp). The shim's cgroup caps the
// rest (client.hpp, process.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "runtime/egress/policy.hpp"
#include "runtime/shim/on_behalf.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::shim {

// Called once per egress decision, from worker threads; calls are serialized.
using AuditFn = std::function<void(const Decision&)>;  // may be empty

struct Counters {
    std::uint64_t allowed = 0;    // destinations allowed (each sendmmsg entry counts)
    std::uint64_t denied = 0;     // destinations refused (ECONNREFUSED), unknown protocols, source routes
    std::uint64_t continued = 0;  // calls on non-IP sockets let through (kernel mode: CONTINUE;
                                  // supervisor mode: performed by the shim for the caller)
    std::uint64_t errors = 0;     // notifications the supervisor could not act on
    std::uint64_t busy = 0;       // answered EAGAIN: the in-flight cap was reached
};

class Supervisor {
public:
    // Shared, never copied: the shim's service keeps the same policy for live changes.
    using PolicyPtr = std::shared_ptr<const egress::ResolvedPolicy>;
    // records_allowed: audit records allowed calls too (audit=all, learning mode), so
    // each one must be judged in full (handle_notification).
    Supervisor(PolicyPtr policy, AuditFn audit, bool records_allowed = true);
    Supervisor(egress::ResolvedPolicy policy, AuditFn audit, bool records_allowed = true);
    // Stops run() and returns without waiting for calls in flight (a blocked connect
    // ends with its socket's timeout); their workers keep what they need alive and no
    // longer call the audit function.
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Thread-safe; may be called while run() runs. Throws sandlock::Error when run()
    // has already returned because every listener hung up (the caller should refuse
    // the registration: nobody would serve it).
    void add_listener(UniqueFd listener);
    // Serves every listener until all of them hung up (no process uses their filter
    // any more) or stop(). Returns at once when no listener was ever added. Call it
    // from one thread; join that thread before destroying the Supervisor.
    void run();
    // Before run(): run() waits for the first add_listener() (or stop()) instead of
    // returning at once when there is no listener yet. creator (optional): a pipe whose
    // other end closing before any listener was added stops the supervisor.
    void await_first_listener(UniqueFd creator = {});
    // The kernel layer is attached to the container's cgroup (before the first listener
    // is added): allowed IP connects are answered CONTINUE (handle_notification).
    void set_kernel_layer();
    // A live change: the calls that start from now on are judged by `policy` (thread-safe;
    // a call in flight finishes under the policy it started with).
    void set_policy(PolicyPtr policy);
    void stop();  // thread-safe
    Counters counters() const;
    size_t listener_count() const;  // listeners being served or waiting to be

private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace sandlock::shim

// The egress shim's client side: what create, exec, delete and `egress ID` do with a
// container's shim — start it, hand it listeners and kernel maps, ask it for its status,
// stop it — and the files it keeps in the state dir. The shim process itself is
// process.hpp; the contract between the two (fds, environment) is launch.hpp.
//
// The shim: a detached process (`sandlock-runc shim <state dir>`) that owns the
// container's seccomp listener fds, runs a Supervisor over them, serves
// <state dir>/shim.sock (control.hpp) and appends decisions to <state dir>/audit.log.
// It exits when every listener hung up (the container's processes are all gone) or on
// SIGTERM, removing shim.sock and shim.pid.
//
// Files in the state dir: egress.json (the ResolvedPolicy, written before the shim
// starts), shim.sock, shim.pid, audit.log (only with io.sandlock.audit deny|all).
//
// Bounded on the host whatever the container does: the Supervisor caps calls in flight,
// bytes copied per call, and gives up a send or connect whose caller is gone
// (supervisor.hpp, on_behalf.cpp); audit.log is rate-limited and size-capped with one
// rotation (AuditLog, process.cpp); and the shim itself lives in a cgroup of its own, a sibling
// of the container's with memory and pids limits (64 MiB, 64 tasks by default,
// SANDLOCK_RUNC_SHIM_MEMORY_MAX / SANDLOCK_RUNC_SHIM_PIDS_MAX in the runtime's
// environment), so that what it holds is charged and capped: `create` launches it held
// (launch_shim(held): started, it waits before doing anything), puts it in that cgroup,
// then releases it
// (release_shim); `delete` removes the cgroup once the shim is gone. See
// runtime/container/shim_cgroup.hpp.
//
// What the shim lets through (issue 11). A seccomp CONTINUE makes the kernel run the
// call as the caller made it: it re-reads the arguments in memory and looks the fd number
// up again, so another thread can put an IP socket behind that number, or an IP address
// in that memory, after the shim has judged. Hence:
//   - kernel mode (the cgroup programs are attached): only connect wakes the shim. It
//     refuses a denied IP destination and CONTINUEs the rest, unix connects included:
//     whatever socket the fd names when the kernel re-reads it, the kernel's connect hook
//     judges the kernel's own copy of the address. Sends never wake the shim.
//   - supervisor mode (no programs: rootless, no cgroup2, refused programs): connect,
//     sendto with an address, sendmsg and sendmmsg wake the shim, and it never answers
//     CONTINUE. Every call is performed by the shim on the socket it judged (its
//     pidfd_getfd duplicate), with the copy of the address and data it read once:
//     IP sockets by the policy; unix and netlink sockets as the caller would have made
//     the call (shim/on_behalf.cpp: a unix path resolved from the caller's root and cwd
//     with its credentials, shim/as_caller.hpp; SCM_RIGHTS fds duplicated from the caller;
//     the caller's SCM_CREDENTIALS on every unix message). A call the shim cannot make as
//     the caller fails closed. The price is on the data path of connected unix sockets
//     (every sendmsg is copied through the shim); sends without an address (send, write,
//     sendto with NULL) never wake it. The shim's own connects and sends are bounded: they
//     never block a thread past the caller's notification (non-blocking, polled in slices).
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/egress/policy.hpp"
#include "runtime/shim/supervisor.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/process.hpp"

namespace sandlock::egress {
class KernelLayer;
}

namespace sandlock::shim {

// The audit log's size cap in bytes, from the runtime's environment (the operator's, or
// audit.max_size of its configuration), passed on to the shim; default 16 MiB.
inline constexpr const char* kAuditMaxSizeEnv = "SANDLOCK_RUNC_AUDIT_MAX_SIZE";

std::string policy_path(const std::string& state_dir);     // egress.json
std::string socket_path(const std::string& state_dir);     // shim.sock
std::string pid_path(const std::string& state_dir);        // shim.pid
std::string audit_log_path(const std::string& state_dir);       // audit.log
// The counters the shim leaves when it exits, for `egress ID` afterwards.
std::string final_counters_path(const std::string& state_dir);  // counters.json
// Learning mode: the distinct destinations seen (egress::LearnedSet), kept up to date.
std::string learned_path(const std::string& state_dir);  // learned.json
// Kernel mode: the newest policy version a live change may have put in the kernel's tables,
// written by the shim before it does (for `delete`, when the shim died in between).
std::string kernel_version_path(const std::string& state_dir);  // kernel-version
void record_kernel_version(const std::string& state_dir, std::uint64_t version);  // throws sandlock::Error
// What the shim recorded: 0 when it recorded nothing (no live change reached the kernel's
// tables), nullopt when the record is unreadable.
std::optional<std::uint64_t> recorded_kernel_version(const std::string& state_dir);

// Writes <state_dir>/egress.json (serialize(policy)), mode 0600.
void write_policy(const std::string& state_dir, const egress::ResolvedPolicy& policy);

// Starts the shim for a container whose policy is already in <state_dir>/egress.json:
// `/proc/self/exe shim <state_dir>` (see set_shim_binary), double-forked, setsid, fds 0-2
// on /dev/null, cwd /, no inherited fd but first_listener (its fd 3). Returns once the
// shim serves shim.sock and has written shim.pid (at most 10 s), with the shim's pid.
// audit_mode: "off", "deny", "all", or "" for the policy's own io.sandlock.audit.
// Throws sandlock::Error("egress shim: ...") when the shim cannot start.
pid_t start_shim(const std::string& state_dir, UniqueFd first_listener, const std::string& audit_mode);
// The same, writing egress.json first; the audit mode is policy.audit.
pid_t start_shim(const std::string& state_dir, const egress::ResolvedPolicy& policy,
                 UniqueFd first_listener);

// Starting the shim before the container exists, so that its start-up overlaps the
// container's setup: launch_shim writes egress.json and spawns the shim (as start_shim
// does), which serves shim.sock and waits for its first listener; finish_shim_launch
// waits until it is ready and registers the listener over shim.sock (as exec does).
// Until then `create` holds one end of a pipe: if it goes away without registering, the
// shim ends by itself.
// The shim is known by a pidfd from its launch on (our child until create exits), and
// finish_shim_launch returns its identity for the state record.
// held: the shim waits, before it does anything but start, until release_shim(), so that
// `create` can first put it (pid) in its own cgroup: everything it does is then charged
// there (but the pages of its start: its binary's data and the C library's, charged where
// create runs). Closing `held` instead (stop_pending_shim) makes it end before it did
// anything.
struct PendingShim {
    std::string state_dir;
    UniqueFd ready;    // the shim's ready pipe
    UniqueFd creator;  // our end of the creator pipe
    pid_t pid = 0;
    UniqueFd pidfd;
    UniqueFd held;     // until release_shim: the shim waits
};
PendingShim launch_shim(const std::string& state_dir, const egress::ResolvedPolicy& policy,
                        bool held = false);
void release_shim(PendingShim& pending);
// Registers the container's first listener. With kernel_layer (attached by create), the
// shim takes over its maps: it keeps them for counters and audit events, removes the
// container's entries when it stops, and answers allowed connects CONTINUE.
// init_pid: the container's init, whose mount namespace later /etc/hosts updates go to
// (a name refresh has no client to name it); 0: none.
proc::Identity finish_shim_launch(PendingShim& pending, UniqueFd first_listener,
                                  egress::KernelLayer* kernel_layer = nullptr, pid_t init_pid = 0);
// For a create that fails: kills the pending shim through its pidfd, waits until it is
// gone, removes shim.sock and shim.pid. Throws if it does not die.
void stop_pending_shim(PendingShim& pending);

// For `exec`: hands a new listener to the running shim. Throws
// Error("egress shim is not running; refusing to exec without egress supervision")
// or Error("egress shim refused the listener: <reason>").
void register_listener(const std::string& state_dir, int listener_fd);

// For `egress ID --allow/--revoke`: asks the running shim to change the container's
// policy (process.cpp's "update"); init_pidfd names the container's init (pid init_pid),
// whose mount namespace gets the new /etc/hosts. Returns the shim's answer: {"changed":
// bool, "hosts": "updated" | "not updated: why" (when the names changed)}. Throws
// Error("egress shim is not running ...") or Error(the shim's one-line reason).
nlohmann::json update_policy(const std::string& state_dir, const std::vector<std::string>& allow,
                             const std::vector<std::string>& revoke, int init_pidfd, pid_t init_pid);

// For `egress ID`: {"policy": egress.json or null, "audit": mode, "audit_log": path or null,
//  "shim": {"running": bool, "pid", "listeners"}, "counters": {allowed, denied, continued,
//  errors} or null when the shim is not running}.
nlohmann::json shim_status(const std::string& state_dir);

// For `delete`: SIGKILL to the shim `shim` names, if that very process still runs
// (pid and start time; a pid reused by another process is never signalled), waits for
// it to be gone, then removes shim.sock and shim.pid. No SIGTERM first: the state it
// could still write goes with the container, and a graceful exit only delays `delete`.
// Idempotent: a shim that already exited, never started or whose pid was reused is not
// an error. Without an identity (a state record from an older build), the pid in
// shim.pid counts only if that process runs `shim <state_dir>`.
// Throws only when the shim outlives SIGKILL, so that nothing is removed under it.
void stop_shim(const std::string& state_dir, const proc::Identity& shim = {});

// The program start_shim runs; default "/proc/self/exe". Tests, whose own binary is not
// sandlock-runc, point it at the built runtime.
void set_shim_binary(const std::string& path);

}  // namespace sandlock::shim

// The contract between the shim's client (client.hpp: create, exec, delete, `egress`)
// and the shim process (process.hpp): the fds and environment the process is started
// with, and the helpers both sides use. Internal to runtime/shim.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "runtime/egress/policy.hpp"

namespace sandlock::shim::startup {

// The ready pipe's fd number in the shim: one line, "ready <pid>" or "error <message>".
inline constexpr const char* kReadyFdEnv = "SANDLOCK_SHIM_READY_FD";
// The audit mode ("off", "deny", "all") when it is not the policy's own.
inline constexpr const char* kAuditEnv = "SANDLOCK_SHIM_AUDIT";
// Set when fd 3 is not a listener but the read end of a pipe `create` holds open until it
// has registered the first listener (launch_shim).
inline constexpr const char* kCreatorFdEnv = "SANDLOCK_SHIM_CREATOR_FD";
// The shim's end of a socket pair: it reads one byte before it does anything (create
// sends it once the shim is in its own cgroup); EOF instead: create failed, it exits.
inline constexpr const char* kProceedFdEnv = "SANDLOCK_SHIM_PROCEED_FD";
inline constexpr int kListenerFd = 3;
inline constexpr int kReadyFd = 4;
inline constexpr int kProceedFd = 5;

// write(2) until done or failed; async-signal-safe (used between clone and execve).
void write_all_raw(int fd, const char* data, std::size_t len);

std::optional<egress::Audit> parse_audit(const std::string& s);

// Absolute, normalized, without a trailing slash: the form the shim's cmdline carries,
// so that stop_shim can recognise it whatever form its caller used.
std::string canonical_dir(const std::string& dir);

}  // namespace sandlock::shim::startup

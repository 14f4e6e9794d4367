// The container's /etc/hosts under an allow policy: the names of the allow rules with
// the addresses the policy admits, so that the workload reaches exactly those even when
// DNS itself is not allowed (or would answer differently).
#pragma once

#include <string>
#include <string_view>

#include "runtime/egress/policy.hpp"

namespace sandlock::egress {

inline constexpr std::string_view kHostsMarker = "# added by sandlock-runc for io.sandlock.network.allow";

// existing (newline-terminated if it was not) followed by a block that starts with
// kHostsMarker and has one "ADDR name" line per resolved address. A block left by an
// earlier run (the marker line and everything after it: the block is always last) is
// replaced, so writing twice gives the same file. Without resolved names, existing is
// returned newline-terminated and without a block. Names that could corrupt the file
// (whitespace, '#', control characters; getaddrinfo never resolves such a name) are skipped.
std::string hosts_with_policy(const std::string& existing, const ResolvedPolicy& policy);

// A container's /etc/hosts as its processes see it, read inside root_fd (a symlink cannot
// point us at a host file), without blocking (a FIFO planted there does not hang us),
// regular files of at most 1 MiB only. "" when there is none. Throws sandlock::Error.
std::string read_hosts_in_root(int root_fd);

}  // namespace sandlock::egress

// A live change's names reach the running container: its /etc/hosts gets the new policy's
// block (egress/hosts.hpp), by a new file mounted over the one it sees.
#pragma once

#include <sys/types.h>

#include <string>

#include "runtime/egress/policy.hpp"

namespace sandlock::shim {

// Writes <state_dir>/hosts.<version> — the container's current /etc/hosts with the block
// of `policy`'s names in place of the previous one — and mounts it read-only over the
// container's /etc/hosts (os::mount_file_over_in): readers see the old file or the new
// one, whole. pidfd names the container's init (pid `pid`, checked to be it); the current
// file is read from inside its root (a symlink cannot point us at a host file), regular
// files only, at most 1 MiB. Returns the file's path (the one it replaces may go). Throws
// sandlock::Error.
std::string update_container_hosts(const std::string& state_dir, unsigned version, int pidfd, pid_t pid,
                            const egress::ResolvedPolicy& policy);

}  // namespace sandlock::shim

// Namespaces: which to create, which to join, and the user-namespace maps.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::os {

int clone_flag(spec::NamespaceType t);

struct NamespaceJoin {
    spec::NamespaceType type;
    UniqueFd fd;
};

// What stage 1 does: the fds are opened by the parent, before it forks, so
// that every path is resolved in the runtime's own mount namespace.
struct NamespacePlan {
    std::vector<NamespaceJoin> join;  // user namespace first
    int unshare_flags = 0;            // new namespaces other than user
    bool new_user = false;
    // exec into a container that shares the runtime's mount namespace: its root
    // (/proc/PID/root), entered with chroot once the namespaces are joined.
    UniqueFd root;
};

NamespacePlan plan_namespaces(const spec::Linux& linux_cfg);
// Plan to enter every namespace of a running process (for exec), except the
// ones it shares with us (setns into our own user namespace fails).
NamespacePlan plan_join_process(pid_t pid, const spec::Linux& linux_cfg);

void join_namespaces(NamespacePlan& plan);
void unshare_namespaces(int flags);
void write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>& uid_map,
                       const std::vector<spec::IdMapping>& gid_map);
void write_time_offsets(const std::map<std::string, spec::TimeOffset>& offsets);
std::string format_id_map(const std::vector<spec::IdMapping>& map);

// Whether the runtime runs without the host's root: not root, or root only in a user
// namespace whose uid 0 is not the host's (podman rootless runs the runtime so). Then
// the state root defaults to $XDG_RUNTIME_DIR, a cgroup it may not make is no error
// unless limits are asked for, and egress runs in supervisor mode.
bool rootless();

// Whether the kernel supports a namespace type at all (time namespaces are recent).
bool kernel_has_namespace(spec::NamespaceType t);

}  // namespace sandlock::os

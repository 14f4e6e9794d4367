// The egress shim's own cgroup: the shim runs outside the container's cgroup (it must
// not be frozen, killed or starved with it), but what it holds for the container is
// charged and capped in a cgroup of its own, a sibling of the container's:
//
//   cgroupfs:  <container cgroup>:shim in the hierarchies of the memory and pids
//              controllers (v1/hybrid), or the cgroup2 directory next to the
//              container's (v2), e.g. /sys/fs/cgroup/memory/<id>:shim
//   systemd:   a transient scope <unit stem>:shim.scope in the container's slice, its
//              limits as unit properties (TasksMax, MemoryLimit / MemoryMax) and in
//              the cgroup files
//
// (':' cannot occur in a container id, so no default cgroupsPath of another container
// can name it; a cgroup of that name that exists already fails create.)
//
// Limits: memory 64 MiB, 64 tasks (threads), unless the operator's environment says
// otherwise: SANDLOCK_RUNC_SHIM_MEMORY_MAX (bytes, a K/M/G suffix, or "max") and
// SANDLOCK_RUNC_SHIM_PIDS_MAX (a count, or "max"), read by `create`. The memory cap
// covers audit.log's pages too when the state dir is on tmpfs (2 x 16 MiB at most by
// default): raise it with SANDLOCK_RUNC_AUDIT_MAX_SIZE. A shim that reaches its memory
// cap is killed by the kernel; the container's intercepted calls then fail (ENOSYS):
// closed, never open.
//
// `create` makes the cgroup, puts the shim in it while the shim waits before doing
// anything (shim::launch_shim held; the pages of its start are charged where create runs), writes the limits, then lets it go; `delete` (and a failed
// create) removes it after the shim is gone. The container cannot raise the limits:
// its cgroup namespace and cgroup mounts start at its own cgroup, and under a policy it
// may not hold CAP_SYS_ADMIN.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/cgroups/manager.hpp"

namespace sandlock::container {

inline constexpr const char* kShimMemoryMaxEnv = "SANDLOCK_RUNC_SHIM_MEMORY_MAX";
inline constexpr const char* kShimPidsMaxEnv = "SANDLOCK_RUNC_SHIM_PIDS_MAX";
inline constexpr std::int64_t kDefaultShimMemoryMax = std::int64_t{64} << 20;
inline constexpr std::int64_t kDefaultShimPidsMax = 64;

struct ShimLimits {
    std::int64_t memory = kDefaultShimMemoryMax;  // bytes; -1: no limit
    std::int64_t pids = kDefaultShimPidsMax;      // tasks; -1: no limit
};

// The two values as the environment gives them (null: unset, the default). Throws
// sandlock::Error naming the variable for a malformed value or one too small for the
// shim to start (memory below 16 MiB, fewer than 16 tasks).
ShimLimits parse_shim_limits(const char* memory, const char* pids);
ShimLimits shim_limits_from_env();

// "<path>:shim": the sibling of a container's cgroup path (absolute or relative).
std::string shim_cgroup_path(const std::string& container_path);
// The hierarchies the shim's cgroup uses: the v1 ones of the memory and pids
// controllers, or the cgroup2 one on a unified host.
cgroups::Hierarchy shim_hierarchy(const cgroups::Hierarchy& host);

// The shim's cgroup for a container whose cgroupfs path (resolved, as make_manager takes
// it) is container_path, or whose systemd unit is container_unit (systemd running).
std::unique_ptr<cgroups::Manager> make_shim_cgroup(const cgroups::Hierarchy& host,
                                                   const std::string& container_path,
                                                   const std::optional<cgroups::SystemdUnit>& container_unit,
                                                   const ShimLimits& limits);

// Throws sandlock::Error when one of the cgroup's directories exists already (it is not
// ours: nothing of it may be removed).
void refuse_existing_shim_cgroup(const cgroups::Manager& cgroup);
// Makes the cgroup, moves pid into it and writes the limits the hierarchies offer (a
// controller that is missing is warned about). Throws sandlock::Error; the caller
// destroys the cgroup on failure.
void place_shim(cgroups::Manager& cgroup, pid_t pid, const ShimLimits& limits);

}  // namespace sandlock::container

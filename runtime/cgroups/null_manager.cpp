#include "runtime/cgroups/null_manager.hpp"

#include "runtime/util/error.hpp"

namespace sandlock::cgroups {

namespace {

// Device rules are not a limit here: without a cgroup (rootless) there is no device
// cgroup to reset, and the container's user namespace already keeps it from making
// device nodes or opening host devices it is not given; crun and runc ignore them
// rootless too (runc's default spec, and podman's, always carry a deny-all rule).
bool sets_a_limit(const Resources& r) {
    return r.memory || r.cpu || r.pids_limit || r.block_io || !r.hugepage_limits.empty() || r.network ||
           !r.rdma.empty() || !r.unified.empty();
}

[[noreturn]] void no_cgroup(const std::string& what) { throw Error("cgroups: no cgroup to " + what); }

}  // namespace

void NullManager::apply(const Resources& r) {
    if (sets_a_limit(r)) no_cgroup("apply resource limits to");
}

void NullManager::freeze() { no_cgroup("freeze"); }

nlohmann::json NullManager::stats() const { no_cgroup("read stats from"); }

}  // namespace sandlock::cgroups

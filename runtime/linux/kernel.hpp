// The kernel seam: the calls with which `create` and `exec` start, wait for and stop the
// container's processes and make its kernel objects (the exec fifo, the id maps, the
// cgroup). real_kernel() makes the calls; a fake (tests/fake_kernel.hpp) answers them from
// a script and plays the children's side of the sync protocol (sync.hpp) over the real
// socket, so that the orchestration -- the steps in order, a failure at each, the undo --
// is unit-tested without root. What stage 1 and init do inside the container runs on the
// real kernel only (runtime/container/init.cpp).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/cgroups/hierarchy.hpp"
#include "runtime/cgroups/manager.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::os {

class Kernel {
public:
    virtual ~Kernel() = default;

    // Processes. start_child forks: the child runs `body`, which never returns (it ends in
    // _exit). `channel` is the child's end of its sync socket, which body uses; a fake
    // plays the child on it instead. Returns the child's pid; throws when none is made.
    virtual pid_t start_child(int channel, const std::function<void()>& body) = 0;
    // waitpid(2) on a child of ours, through EINTR: its wait status, or -1 when it is not
    // (or no longer) ours to reap.
    virtual int wait_child(pid_t pid) = 0;
    // SIGKILL; a process that is gone is no error.
    virtual void kill(pid_t pid) = 0;
    // SIGKILL, then waits (a second at most) until pid is gone: reaped if it is our child,
    // else exited (init is stage 1's child: its zombie is its subreaper's to reap).
    virtual void kill_and_reap(pid_t pid) = 0;
    // /proc/PID/stat's start time (names the process: proc::Identity), nullopt once gone.
    virtual std::optional<unsigned long long> start_time(pid_t pid) = 0;

    // The user namespace of pid (stage 1): /proc/PID/uid_map, setgroups, gid_map.
    virtual void write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>& uid_map,
                                   const std::vector<spec::IdMapping>& gid_map) = 0;
    // The fifo init waits on until `start` (mode 0622), opened O_PATH.
    virtual UniqueFd make_exec_fifo(const std::string& path) = 0;
    // exec: the namespaces of the running process pid to join (plan_join_process).
    virtual NamespacePlan plan_join_process(pid_t pid, const spec::Linux& linux_cfg) = 0;

    // Cgroups. The host's hierarchies (cgroups::probe_host).
    virtual cgroups::Hierarchy cgroup_hierarchy() = 0;
    // A cgroupfs manager for resolved_path (cgroups::make_manager): nothing made yet.
    virtual std::unique_ptr<cgroups::Manager> cgroup_manager(const cgroups::Hierarchy& host,
                                                             const std::string& resolved_path) = 0;
    // A running container's manager, from its state record (cgroups::open_manager).
    virtual std::unique_ptr<cgroups::Manager> open_cgroup_manager(const nlohmann::json& state) = 0;
};

// The one real kernel, which production code always uses.
Kernel& real_kernel();

}  // namespace sandlock::os

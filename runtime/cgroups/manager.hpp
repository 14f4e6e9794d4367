// The cgroup managers behind one interface: v1 (legacy), hybrid (v1 plus the
// cgroup2 mount, as runc does), v2 (unified) and none (a container without a
// cgroup, null_manager.hpp). A manager creates the
// container's cgroup, moves processes into it and removes it again; it is
// serialized into state.json so that `delete` can reopen it in another process.
//
// Typical use (create):  auto m = make_manager(probe_host(), resolve_cgroups_path(...));
//                        m->create(); m->add_process(init_pid); state["cgroup"] = m->to_state();
// and (delete):          auto m = open_manager(state["cgroup"]); /* kill first */ m->destroy();
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/cgroups/hierarchy.hpp"
#include "runtime/cgroups/path.hpp"
#include "runtime/cgroups/resources.hpp"

namespace sandlock::cgroups {

// Which hierarchies a manager's cgroup lives in. None: the container has no cgroup.
enum class Kind { None, V1, Hybrid, V2 };
// "none", "v1", "hybrid", "v2": the names state.json records.
const char* kind_name(Kind kind);

class Manager {
public:
    virtual ~Manager() = default;

    // mkdir the cgroup in every hierarchy that applies (parents too). On
    // failure, removes what this call created and throws.
    virtual void create() = 0;
    // Writes pid to cgroup.procs in every hierarchy.
    virtual void add_process(pid_t pid) = 0;
    // Writes pid into the cgroup the calling process itself is in, in every
    // hierarchy this manager uses. create takes its setup processes back out
    // of the container's cgroup with it, so that only the workload is charged
    // there (charges stay where they were made: v1 with the default
    // memory.move_charge_at_immigrate 0, and always on v2).
    virtual void add_process_to_own_cgroup(pid_t pid) = 0;
    // Processes in the cgroup, from the authoritative hierarchy's cgroup.procs
    // (v1/hybrid: the devices hierarchy, like runc; v2: the one cgroup); none
    // when the cgroup is gone.
    virtual std::vector<pid_t> pids() const = 0;
    // Thaws a frozen cgroup (so killed tasks can exit), then removes the
    // cgroup everywhere (its child cgroups too), retrying while
    // EBUSY for about a second, then the parents this manager created,
    // deepest first; parents it did not create are never touched. Missing
    // directories are fine, so destroy() may be called twice.
    virtual void destroy() = 0;
    // Whether the cgroup exists in the authoritative hierarchy.
    virtual bool exists() const = 0;
    // The cgroup path inside the authoritative hierarchy, e.g. "/system.slice/x.scope".
    virtual std::string path() const = 0;
    // Absolute directories keyed like runc's cgroup_paths: one key per v1
    // controller ("cpu", "name=systemd") and "" for the cgroup2 directory.
    virtual std::map<std::string, std::string> dirs() const = 0;
    virtual Kind kind() const = 0;
    // Everything open_manager() needs, including the directories created.
    virtual nlohmann::json to_state() const = 0;

    // Writes the limits r sets (and only those), as `create` and `update`
    // need. Throws sandlock::Error naming the file and value on failure.
    virtual void apply(const Resources& r) = 0;
    // Freezes every process of the cgroup and waits until the kernel reports
    // it frozen (v1 freezer.state FROZEN, v2 cgroup.events "frozen 1").
    // On timeout it thaws again and throws.
    virtual void freeze() = 0;
    virtual void thaw() = 0;
    virtual bool frozen() const = 0;
    // Whether the cgroup exists only once a first process is added (the systemd
    // driver's unit), so that create must add one before anything else uses it.
    virtual bool made_by_first_process() const { return false; }
    // The `data` of runc's `events --stats`: cpu, cpuset, memory, pids, blkio,
    // hugetlb (runc's types.Stats field names; absent controllers stay empty).
    virtual nlohmann::json stats() const = 0;
};

// Whether the container whose state.json "cgroup" record is cgroup_state is
// paused. False for a null/invalid record or a cgroup that is gone; never throws.
bool is_frozen(const nlohmann::json& cgroup_state) noexcept;

// resolved_path comes from resolve_cgroups_path(): absolute ("/a/b", inside
// every hierarchy) or relative ("a/b": v1 and hybrid put it below this
// process's own cgroup in each hierarchy, pure v2 below the parent of the own
// cgroup — both as runc 1.1 does). root_prefix is prepended to every mount
// point (tests use a fake tree). Throws sandlock::Error.
std::unique_ptr<Manager> make_manager(const Hierarchy& hierarchy, const std::string& resolved_path,
                                      const std::string& root_prefix = "");

// The manager of a container without a cgroup (null_manager.hpp).
std::unique_ptr<Manager> make_null_manager();

// Reopens a manager from to_state(); a null state (no cgroup) gives the null manager.
// Throws sandlock::Error on a malformed state.
std::unique_ptr<Manager> open_manager(const nlohmann::json& state);

}  // namespace sandlock::cgroups

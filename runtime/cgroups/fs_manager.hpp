// Internal: the part the v1, hybrid and v2 managers share — a set of cgroup
// directories, one per hierarchy, and the list of directories this manager
// created. The concrete managers only say how to prepare each directory.
#pragma once

#include "runtime/cgroups/manager.hpp"

namespace sandlock::cgroups {

// The container's cgroup in one hierarchy.
struct Target {
    std::string mount;                     // mount point, root prefix included
    std::string cgroup;                    // "/a/b", below the mount point
    std::vector<std::string> controllers;  // v1 controllers; v2: what the root offers
    bool unified = false;                  // the cgroup2 hierarchy

    std::string dir() const { return mount + cgroup; }
    bool has(const std::string& controller) const;
};

class FsManager : public Manager {
public:
    FsManager(std::vector<Target> targets, std::vector<std::string> created);

    void create() override;
    void add_process(pid_t pid) override;
    void add_process_to_own_cgroup(pid_t pid) override;
    std::vector<pid_t> pids() const override;
    void destroy() override;
    bool exists() const override;
    std::string path() const override;
    std::map<std::string, std::string> dirs() const override;
    nlohmann::json to_state() const override;

    const std::vector<Target>& targets() const { return targets_; }
    const std::vector<std::string>& created() const { return created_; }

protected:
    // Called for each directory from the mount point down to the target's
    // cgroup (parents first), after it was created (or found existing).
    virtual void prepare_dir(const Target& target, const std::string& dir, bool created,
                             bool leaf) = 0;
    // The hierarchy pids() and exists() read.
    virtual const Target& authoritative() const;
    // Extra words for an add_process failure (v2 explains its rules).
    virtual std::string join_hint(int err) const;

private:
    void create_target(const Target& target);
    void remove_created_since(size_t count) noexcept;

    std::vector<Target> targets_;
    std::vector<std::string> created_;  // absolute, in creation order
};

// The calling process's own cgroup directory in each target's hierarchy, in
// target order, from host (probe_host(): mount points and own_path). A target
// matches the host mount with the same mount point. Throws sandlock::Error
// when a hierarchy is not mounted or our place in it is unknown.
std::vector<std::string> own_cgroup_dirs(const std::vector<Target>& targets, const Hierarchy& host);

// Parses "12\n34\n" (cgroup.procs). Throws on garbage.
std::vector<pid_t> parse_pids(const std::string& text, const std::string& source);

}  // namespace sandlock::cgroups

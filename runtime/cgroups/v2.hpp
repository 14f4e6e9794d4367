// The cgroup v2 manager: one directory in the unified hierarchy. Controllers
// are enabled in cgroup.subtree_control of the parents this manager creates
// (never in the container's own cgroup: the "no internal processes" rule
// forbids processes in a cgroup that delegates domain controllers).
#pragma once

#include "runtime/cgroups/fs_manager.hpp"

namespace sandlock::cgroups {

class V2Manager : public FsManager {
public:
    V2Manager(std::vector<Target> targets, std::vector<std::string> created);

    Kind kind() const override { return Kind::V2; }
    void apply(const Resources& r) override;
    void freeze() override;
    void thaw() override;
    bool frozen() const override;
    nlohmann::json stats() const override;

protected:
    void prepare_dir(const Target& target, const std::string& dir, bool created, bool leaf) override;
    std::string join_hint(int err) const override;
};

// The controllers the runtime wants delegated, among those a cgroup's
// cgroup.controllers offers (text as read from the file), in a stable order.
std::vector<std::string> controllers_to_enable(const std::string& available);

// Writes r into the cgroup2 directory dir, translating the v1 fields (see
// resources.hpp for the formulas); unified keys are written last, so they win.
// Devices become an eBPF program attached to dir (devices_bpf.hpp).
void apply_v2_resources(const Resources& r, const std::string& dir);
// runc's stats from a cgroup2 directory.
nlohmann::json v2_stats(const std::string& dir);
// cgroup.freeze of dir, waiting for cgroup.events to report the new state.
void v2_set_frozen(const std::string& dir, bool frozen);
bool v2_is_frozen(const std::string& dir);

}  // namespace sandlock::cgroups

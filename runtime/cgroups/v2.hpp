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

    std::string kind() const override { return "v2"; }

protected:
    void prepare_dir(const Target& target, const std::string& dir, bool created, bool leaf) override;
    std::string join_hint(int err) const override;
};

// The controllers the runtime wants delegated, among those a cgroup's
// cgroup.controllers offers (text as read from the file), in a stable order.
std::vector<std::string> controllers_to_enable(const std::string& available);

}  // namespace sandlock::cgroups

// The cgroup v1 manager: one directory under every mounted v1 hierarchy
// (controllers and named ones such as name=systemd). On a hybrid host it also
// owns a directory in the cgroup2 mount, as runc does, so that systemd and
// other v2 readers see the container; resources stay on the v1 side there.
#pragma once

#include "runtime/cgroups/fs_manager.hpp"

namespace sandlock::cgroups {

class V1Manager : public FsManager {
public:
    // hybrid: whether one target is the cgroup2 mount.
    V1Manager(std::vector<Target> targets, std::vector<std::string> created, bool hybrid);

    std::string kind() const override { return hybrid_ ? "hybrid" : "v1"; }

protected:
    void prepare_dir(const Target& target, const std::string& dir, bool created, bool leaf) override;
    // The devices hierarchy, like runc; else the cgroup2 one; else the first.
    const Target& authoritative() const override;

private:
    bool hybrid_;
};

}  // namespace sandlock::cgroups

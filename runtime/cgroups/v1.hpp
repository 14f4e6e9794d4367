// The cgroup v1 manager: one directory under every mounted v1 hierarchy
// (controllers and named ones such as name=systemd). On a hybrid host it also
// owns a directory in the cgroup2 mount, as runc does, so that systemd and
// other v2 readers see the container; resources stay on the v1 side there.
#pragma once

#include "runtime/cgroups/fs_manager.hpp"

namespace sandlock::cgroups {

// The kernel switches its cpuset code on (a static key: code patched on every CPU with
// IPIs, ~1 ms here) when the first cpuset cgroup below the root appears, and off again
// when the last one goes (in a kworker, after the rmdir). On a v1 host whose cpuset
// hierarchy is otherwise empty, every lone container paid that twice. This empty cgroup
// at the root of the cpuset hierarchy, made by the first create and never removed,
// keeps the code switched on: its cpus and mems stay empty, so no task can ever join it.
// Best effort: a failure costs time, never correctness.
inline constexpr const char* kWarmCpusetCgroup = "sandlock-runc.cpuset";

class V1Manager : public FsManager {
public:
    // hybrid: whether one target is the cgroup2 mount.
    V1Manager(std::vector<Target> targets, std::vector<std::string> created, bool hybrid);

    Kind kind() const override { return hybrid_ ? Kind::Hybrid : Kind::V1; }
    // Makes sure the cpuset hierarchy holds kWarmCpusetCgroup first (see there).
    void create() override;
    void apply(const Resources& r) override;
    void freeze() override;
    void thaw() override;
    bool frozen() const override;
    nlohmann::json stats() const override;

protected:
    void prepare_dir(const Target& target, const std::string& dir, bool created, bool leaf) override;
    // The devices hierarchy, like runc; else the cgroup2 one; else the first.
    const Target& authoritative() const override;

private:
    bool hybrid_;
};

// Writes r into v1 controller directories keyed by controller name (as
// Manager::dirs() returns them). linux.resources.unified is refused.
void apply_v1_resources(const Resources& r, const std::map<std::string, std::string>& dirs);
// Resets devices.allow/deny of dir to exactly rules (deny-all first).
void apply_v1_devices(const std::vector<DeviceRule>& rules, const std::string& dir);
// runc's stats from v1 controller directories.
nlohmann::json v1_stats(const std::map<std::string, std::string>& dirs);
// freezer.state of dir: FROZEN or THAWED, waiting until the kernel agrees.
void v1_set_frozen(const std::string& freezer_dir, bool frozen);
bool v1_is_frozen(const std::string& freezer_dir);

}  // namespace sandlock::cgroups

// The manager of a container without a cgroup (rootless with nothing delegated,
// or a state.json that records none): the bookkeeping calls are no-ops, and
// what needs a cgroup (limits, freezing, stats) throws a "no cgroup" error.
#pragma once

#include "runtime/cgroups/manager.hpp"

namespace sandlock::cgroups {

class NullManager : public Manager {
public:
    void create() override {}
    void add_process(pid_t) override {}
    void add_process_to_own_cgroup(pid_t) override {}
    // No cgroup knows the processes: callers fall back to init alone.
    std::vector<pid_t> pids() const override { return {}; }
    void destroy() override {}
    bool exists() const override { return false; }
    std::string path() const override { return ""; }
    std::map<std::string, std::string> dirs() const override { return {}; }
    Kind kind() const override { return Kind::None; }
    // Null, as state.json's "cgroup" of a container without one: open_manager reads it back.
    nlohmann::json to_state() const override { return nullptr; }

    // Setting no limit needs no cgroup; any limit does.
    void apply(const Resources& r) override;
    void freeze() override;
    // Nothing is frozen, so there is nothing to thaw.
    void thaw() override {}
    bool frozen() const override { return false; }
    nlohmann::json stats() const override;
};

}  // namespace sandlock::cgroups

// A container as its state directory records it, and every operation on it:
// create, start, exec, kill, pause, resume, update, stats (events), delete and
// state. runtime/cli/ parses the arguments, calls these and prints.
//
// Each operation first asks its guard (can_start(), can_pause(), ...) and refuses
// with runc's wording, which callers and tests match. The status is the one
// observed when the container was loaded: each command loads it afresh.
//
// Typical use:  Container::load(store, id).pause();
//               auto c = Container::create(store, opts); c.start();
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/cgroups/manager.hpp"
#include "runtime/container/create.hpp"
#include "runtime/container/exec.hpp"
#include "runtime/container/state.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::container {

class Container {
public:
    // The container as observed: frozen says whether its cgroup is frozen (a created
    // container can be paused, and still reports "created"). load() observes them;
    // tests make any combination.
    Container(StateStore store, ContainerState state, Status status, bool frozen);

    // Throws `container "ID" does not exist`.
    static Container load(const StateStore& store, const std::string& id);
    // Builds the container up to init waiting for start (create.hpp).
    static Container create(const StateStore& store, const CreateOptions& opts);
    // delete: as destroy(force), but with --force a container that does not exist
    // (or is half made) is no error, as in runc.
    static void destroy_by_id(const StateStore& store, const std::string& id, bool force);

    const std::string& id() const { return state_.id; }
    const ContainerState& state() const { return state_; }
    Status status() const { return status_; }
    // The pty master of a foreground create with a terminal, once (run proxies it).
    UniqueFd take_console_master() { return std::move(console_master_); }

    bool can_start() const;
    bool can_exec() const;
    // Without --all: a stopped container has no process to signal.
    bool can_kill() const;
    bool can_pause() const;
    bool can_resume() const;
    bool can_update() const;
    bool can_get_stats() const;
    // Without --force.
    bool can_delete() const;

    // Lets init execve the process and runs the poststart hooks.
    void start();
    // Runs a process in the container (exec.hpp; opts.id names this container); the
    // exit code to exit with.
    int exec(const ExecOptions& opts) const;
    // all: every process of the cgroup. A SIGKILL also thaws a paused container.
    void kill(int sig, bool all) const;
    void pause() const;
    void resume() const;
    // resources: a linux.resources object; only what it sets changes (devices never).
    // Also merged into the saved config, so that later commands see the current limits.
    void update(const nlohmann::json& resources) const;
    // runc's `events --stats` data (cgroups::Manager::stats()).
    nlohmann::json stats() const;
    // Whether init is alive and its cgroup still there (`events` stops when not).
    bool still_running() const;
    // Kills a created (or, with force, running or paused) container, removes its
    // cgroup, shim and record, and runs the poststop hooks.
    void destroy(bool force);
    // The OCI state (`state`, `list`).
    nlohmann::ordered_json state_json() const;
    // The processes of its cgroup (`ps`); none without a cgroup.
    std::vector<pid_t> pids() const;
    // `egress ID`: its shim's status (shim::shim_status: rules, counters, audit) and which
    // layer enforces ("enforcement": kernel, supervisor, or null without a policy).
    nlohmann::json egress_status() const;
    // `egress ID --allow RULE --revoke RULE`: a live change of its policy
    // (EgressEnforcement::update). Refused for a stopped container and for one without a
    // policy. Returns the shim's answer (shim::update_policy).
    bool can_change_egress() const;
    // `egress ID --suggest`: in learning mode, the allow list (an io.sandlock.network.allow
    // value, egress::suggest_allow) that would have let through exactly what the container
    // reached so far; `incomplete` counts destinations past the learned set's cap. Works
    // on a stopped container too. Throws when the container is not in learning mode.
    struct Suggestion {
        std::string allow;
        std::uint64_t incomplete = 0;
    };
    Suggestion suggest_egress() const;
    nlohmann::json change_egress(const std::vector<std::string>& allow, const std::vector<std::string>& revoke) const;

private:
    // The cgroup manager; the null manager when the container has none.
    std::unique_ptr<cgroups::Manager> open_cgroup() const;
    // The same, but "container ID has no cgroup<purpose>" when it has none.
    std::unique_ptr<cgroups::Manager> require_cgroup(const std::string& purpose) const;

    StateStore store_;
    ContainerState state_;
    Status status_;
    bool frozen_;
    UniqueFd console_master_;
};

// "9", "KILL", "SIGKILL", "kill" -> 9; throws `unknown signal "X"`.
int parse_signal(const std::string& text);

}  // namespace sandlock::container

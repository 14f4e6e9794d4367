// Container: loading, the status guards, and the operations that hand over to
// their own orchestration (create.hpp, exec.hpp) or only read the record.
// start, kill and delete are in lifecycle.cpp; pause, resume, update and stats
// in cgroup_ops.cpp.
#include "runtime/container/container.hpp"

#include "runtime/container/egress_setup.hpp"
#include "runtime/egress/learn.hpp"
#include "runtime/egress/live_change.hpp"
#include "runtime/util/fs.hpp"

#include "runtime/shim/client.hpp"

#include "runtime/util/error.hpp"

namespace sandlock::container {

Container::Container(StateStore store, ContainerState state, Status status, bool frozen)
    : store_(std::move(store)), state_(std::move(state)), status_(status), frozen_(frozen) {}

Container Container::load(const StateStore& store, const std::string& id) {
    ContainerState st = store.load(id);
    const Status status = current_status(store, st);
    // A running container with a frozen cgroup is already "paused"; a created one stays "created".
    const bool frozen = status == Status::Paused || (status == Status::Created && cgroups::is_frozen(st.cgroup));
    return Container(store, std::move(st), status, frozen);
}

Container Container::create(const StateStore& store, const CreateOptions& opts) {
    CreateResult created = create_container(store, opts);
    Container c(store, std::move(created.state), Status::Created, false);
    c.console_master_ = std::move(created.console_master);
    return c;
}

bool Container::can_start() const { return status_ == Status::Created; }

bool Container::can_exec() const { return status_ != Status::Stopped && status_ != Status::Paused; }

bool Container::can_kill() const { return status_ != Status::Stopped; }

// Like runc: a created container (parked before execve) can be frozen too.
bool Container::can_pause() const { return status_ == Status::Running || status_ == Status::Created; }

// The cgroup is the truth: a paused created container still reports "created".
bool Container::can_resume() const { return status_ != Status::Stopped && frozen_; }

bool Container::can_update() const { return status_ != Status::Stopped; }

bool Container::can_get_stats() const { return status_ != Status::Stopped; }

bool Container::can_delete() const { return status_ == Status::Stopped || status_ == Status::Created; }

int Container::exec(const ExecOptions& opts) const {
    if (!can_exec()) throw Error(std::string("cannot exec in a ") + status_name(status_) + " container");
    return exec_in_container(store_, state_, status_, opts);
}

nlohmann::ordered_json Container::state_json() const { return oci_state(state_, status_); }

std::vector<pid_t> Container::pids() const { return open_cgroup()->pids(); }

nlohmann::json Container::egress_status() const {
    nlohmann::json s = shim::shim_status(store_.dir(id()));
    s["enforcement"] = state_.egress_enforcement.empty() ? nlohmann::json(nullptr) : nlohmann::json(state_.egress_enforcement);
    return s;
}

bool Container::can_change_egress() const { return status_ != Status::Stopped && status_ != Status::Creating; }

nlohmann::json Container::change_egress(const std::vector<std::string>& allow,
                                        const std::vector<std::string>& revoke) const {
    // The rules first: a typo is reported the same whether or not the container runs.
    const egress::PolicyChange change = egress::parse_change(allow, revoke);
    if (change.empty()) throw Error("egress: nothing to change (--allow RULE or --revoke RULE)");
    if (state_.egress_enforcement.empty()) throw Error("container " + id() + " has no egress policy to change");
    if (!can_change_egress()) throw Error(std::string("cannot change the egress policy of a ") + status_name(status_) + " container");
    return EgressEnforcement::update(store_.dir(id()), {state_.pid, state_.init_start_time}, allow, revoke);
}

Container::Suggestion Container::suggest_egress() const {
    const std::string dir = store_.dir(id());
    const auto policy = fs::try_read_file(shim::policy_path(dir));
    if (!policy || !egress::deserialize_policy(*policy).learn)
        throw Error("container " + id() + " is not in learning mode (" + std::string(egress::kLearnKey) + ": \"true\")");
    egress::LearnedSet learned;
    if (const auto text = fs::try_read_file(shim::learned_path(dir)))
        learned = egress::LearnedSet::from_json(nlohmann::json::parse(*text, nullptr, false));
    // Names as the container saw them: its own /etc/hosts.
    spec::Config cfg = spec::parse_config(nlohmann::json::parse(fs::read_file(store_.config_path(id()))));
    const auto names = egress::names_in_hosts(container_hosts(cfg, state_.bundle, state_.rootfs));
    return {egress::suggest_allow(learned.entries(), names), learned.dropped()};
}

std::unique_ptr<cgroups::Manager> Container::open_cgroup() const { return cgroups::open_manager(state_.cgroup); }

std::unique_ptr<cgroups::Manager> Container::require_cgroup(const std::string& purpose) const {
    auto cgroup = open_cgroup();
    if (cgroup->kind() == cgroups::Kind::None) throw Error("container " + id() + " has no cgroup" + purpose);
    return cgroup;
}

}  // namespace sandlock::container

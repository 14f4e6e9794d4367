#include "runtime/container/egress_setup.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "runtime/egress/filter.hpp"
#include "runtime/egress/hosts.hpp"
#include "runtime/linux/identity.hpp"
#include "runtime/linux/safe_path.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::container {
namespace {

bool has_private_netns(const spec::Config& cfg) {
    return cfg.linux.has_namespace(spec::NamespaceType::Network);
}

os::LandlockNetRules landlock_rules(const egress::ResolvedPolicy& policy, const spec::Config& cfg) {
    os::LandlockNetRules rules;
    rules.connect_tcp_ports = policy.landlock_connect_ports();
    if (policy.bind) {
        std::vector<uint16_t> ports;
        for (const auto& range : *policy.bind)
            for (uint32_t p = range.first; p <= range.last; ++p) ports.push_back(static_cast<uint16_t>(p));
        rules.bind_tcp_ports = std::move(ports);
    }
    // Sharing the host's network namespace also shares its abstract unix sockets.
    rules.scope_abstract_unix = !has_private_netns(cfg);
    return rules;
}

spec::Mount* find_hosts_mount(spec::Config& cfg) {
    for (auto& m : cfg.mounts)
        if (m.destination == "/etc/hosts") return &m;
    return nullptr;
}


// Read-only inside: the names the policy resolved are the runtime's to keep (a live
// change rewrites the file from outside).
void bind_hosts_file(spec::Config& cfg, const std::string& path) {
    if (spec::Mount* m = find_hosts_mount(cfg)) {
        m->source = path;
        std::erase(m->options, std::string("rw"));
        if (std::find(m->options.begin(), m->options.end(), "ro") == m->options.end()) m->options.push_back("ro");
        return;
    }
    spec::Mount m;
    m.destination = "/etc/hosts";
    m.type = "bind";
    m.source = path;
    m.options = {"rbind", "rprivate", "ro"};
    cfg.mounts.push_back(std::move(m));
}

}  // namespace

std::string container_hosts(spec::Config& cfg, const std::string& bundle, const std::string& rootfs) {
    if (spec::Mount* m = find_hosts_mount(cfg)) {
        std::string source = m->source;
        if (!source.empty() && source[0] != '/') source = fs::join(bundle, source);
        return fs::read_file(source);
    }
    UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open " + rootfs);
    return egress::read_hosts_in_root(root.get());
}

std::string policy_source(const std::map<std::string, std::string>& annotations) {
    std::string keys;
    for (const auto& [key, value] : annotations)
        if (key.starts_with("io.sandlock.network.")) keys += (keys.empty() ? "" : ", ") + key;
    return keys.empty() ? "an egress policy" : keys;
}

void refuse_egress_bypassing_capabilities(const spec::Process& process, const std::string& source) {
    static const std::vector<std::pair<std::string, std::string>> kBypass = {
        {"CAP_NET_ADMIN", "it can re-route, NAT or tunnel around the egress policy"},
        {"CAP_SYS_ADMIN", "it can leave the cgroup whose kernel programs judge every connection"},
        {"CAP_SYS_MODULE", "it can load kernel code that no egress check sees"},
        {"CAP_BPF", "it can load BPF programs that change where packets go"},
    };
    if (!process.capabilities) return;  // no capabilities at all
    std::vector<std::string> names;
    for (const auto& [name, why] : kBypass) names.push_back(name);
    const auto granted = os::find_granted_capability(*process.capabilities, names);
    if (!granted) return;
    for (const auto& [name, why] : kBypass)
        if (granted->name == name)
            throw Error(".process.capabilities." + granted->set + ": " + name + " cannot be granted under " +
                        source + ": " + why);
}

void refuse_inherited_ip_sockets(int passed_fds, bool stdio, const std::string& source) {
    const auto check = [&](int fd) {
        int family = 0;
        socklen_t len = sizeof family;
        if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return;  // not a socket, or closed
        if (family != AF_INET && family != AF_INET6) return;
        throw Error("fd " + std::to_string(fd) + " is an " + (family == AF_INET ? "AF_INET" : "AF_INET6") +
                    " socket made outside the container: the kernel programs of " + source +
                    " judge only the container's own sockets (pass a unix socket, or allow supervisor mode)");
    };
    if (stdio)
        for (int fd = 0; fd < 3; ++fd) check(fd);
    for (int fd = 3; fd < 3 + passed_fds; ++fd) check(fd);
}

std::optional<EgressPlan> prepare_egress(spec::Config& cfg, egress::Policy policy,
                                         const std::string& bundle,
                                         const std::string& rootfs, const std::string& state_dir) {
    if (!policy.active()) return std::nullopt;
    egress::SystemResolver resolver;
    // Loopback defaults to allowed only when it is the container's own.
    auto loopback = has_private_netns(cfg) ? egress::Loopback::Allow : egress::Loopback::Deny;
    EgressPlan plan{egress::resolve(std::move(policy), resolver, loopback), {}, egress::Enforcement::Supervisor};
    plan.landlock = landlock_rules(plan.policy, cfg);
    if (!plan.policy.hosts.empty()) {
        std::string hosts = fs::join(state_dir, "hosts");
        fs::write_file_atomic(hosts,
                              egress::hosts_with_policy(container_hosts(cfg, bundle, rootfs), plan.policy),
                              0644);
        bind_hosts_file(cfg, hosts);
    }
    return plan;
}

std::optional<EgressPlan> load_egress_plan(const spec::Config& cfg, const std::string& state_dir,
                                            const std::string& enforcement) {
    std::string path = shim::policy_path(state_dir);
    if (!fs::exists(path)) return std::nullopt;
    EgressPlan plan{egress::deserialize_policy(fs::read_file(path)), {}, egress::Enforcement::Supervisor};
    // A record without it (an older build) gets the filter that notifies every call.
    plan.enforcement = egress::enforcement_from_string(enforcement).value_or(egress::Enforcement::Supervisor);
    plan.landlock = landlock_rules(plan.policy, cfg);
    return plan;
}

void confine_egress(const EgressPlan& plan, SyncSocket& sock) {
    if (!os::apply_landlock(plan.landlock))
        log::warn("Landlock network rules are not supported by this kernel; "
                  "egress is enforced by the seccomp supervisor alone");
    UniqueFd listener = egress::install_egress_filter(plan.enforcement == egress::Enforcement::Kernel);
    sock.send(msg::EgressListener{.fd = listener.get()});
    sock.expect<msg::EgressDone>();
}

// ---- the owner at create ---------------------------------------------------------

EgressEnforcement::EgressEnforcement(spec::Config& cfg, egress::Policy policy, const std::string& bundle,
                                     const std::string& rootfs, const std::string& state_dir)
    : plan_(prepare_egress(cfg, std::move(policy), bundle, rootfs, state_dir)), state_dir_(state_dir) {
    if (plan_) shim_limits_ = shim_limits_from_env();
}

void EgressEnforcement::start() {
    if (!plan_ || maps_thread_.joinable()) return;
    // After stage 1's fork: create's memory was then still small and quiet (a fork while
    // the thread writes and the shim execs took 1.1 ms longer), and stage 1 does not
    // inherit the shim's channel. On a thread, so that create serves stage 1 meanwhile
    // (plan_ is not moved again). Promises rather than std::async's future, whose get()
    // waits for the thread to have exited (0.5 ms here with both processors busy); the
    // thread is joined at the owner's end.
    std::promise<shim::PendingShim> launched;
    std::promise<PreparedMaps> made;
    std::promise<std::string> attached;
    launched_ = launched.get_future();
    maps_ = made.get_future();
    attached_ = attached.get_future();
    maps_thread_ = std::thread([this, launched = std::move(launched), made = std::move(made),
                                attached = std::move(attached), cgroup2_dir = cgroup2_dir_.get_future()]() mutable {
        try {
            made.set_value(prepare_kernel_layer(cgroup2_dir, attached, launched));
        } catch (...) {
            made.set_exception(std::current_exception());
        }
    });
}

// In the order create needs them: the programs attached (create waits for the mode after
// stage 1's cgroup step), the shim launched (placed while init sets the container up;
// its spawn waits for its execve, 1.2 ms here: this thread's wait, not create's), the
// maps registered (before the hand-over). A systemd cgroup exists only once stage 1 has
// joined it: the shim is launched first then.
EgressEnforcement::PreparedMaps EgressEnforcement::prepare_kernel_layer(std::future<std::string>& cgroup2_dir,
                                                                        std::promise<std::string>& attached,
                                                                        std::promise<shim::PendingShim>& launched) {
    PreparedMaps out;
    try {
        out.layer.emplace(plan_->policy);
    } catch (const std::exception& e) {
        out.error = e.what();
    }
    std::optional<std::string> dir;
    if (cgroup2_dir.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
        dir = attach_once_cgroup_exists(out, cgroup2_dir, attached);
    try {
        launched.set_value(shim::launch_shim(state_dir_, plan_->policy, true));
    } catch (...) {
        launched.set_exception(std::current_exception());
    }
    if (!dir) dir = attach_once_cgroup_exists(out, cgroup2_dir, attached);
    if (dir->empty()) return out;
    // Until the grace periods of the registration (2-3 ms here) are over, the programs
    // deny everything; init sets the container up meanwhile.
    try {
        out.layer->register_for(*dir);
    } catch (const Error& e) {
        out.layer.reset();
        out.error = e.what();
    }
    return out;
}

std::string EgressEnforcement::attach_once_cgroup_exists(PreparedMaps& prepared,
                                                         std::future<std::string>& cgroup2_dir,
                                                         std::promise<std::string>& attached) {
    std::string dir;
    try {
        dir = cgroup2_dir.get();
    } catch (const std::future_error&) {
        return "";  // create failed before the cgroup existed
    }
    // No directory: attach() knows why from the cgroup's dirs and does not ask.
    if (dir.empty() || !prepared.layer) {
        attached.set_value(prepared.error);
        return "";
    }
    try {
        prepared.layer->attach_programs(dir);
    } catch (const Error& e) {
        prepared.layer.reset();
        prepared.error = e.what();
        attached.set_value(prepared.error);
        return "";
    }
    attached.set_value("");
    return dir;
}

void EgressEnforcement::tell_cgroup2_dir(const egress::KernelLayerTarget& target) {
    if (cgroup_told_) return;
    cgroup2_dir_.set_value(target.why_not.empty() ? target.dir : std::string());
    cgroup_told_ = true;
}

void EgressEnforcement::cgroup_made(const std::map<std::string, std::string>& cgroup_dirs) {
    if (plan_) tell_cgroup2_dir(egress::kernel_layer_target(cgroup_dirs));
}

EgressEnforcement::~EgressEnforcement() {
    if (!committed_) {
        try {
            abandon();
        } catch (const std::exception& e) {
            log::warn(std::string("egress shim: ") + e.what());
        }
    }
    cgroup2_dir_ = std::promise<std::string>();  // a thread still waiting for the cgroup stops
    if (maps_thread_.joinable()) maps_thread_.join();  // it reads plan_
}

bool EgressEnforcement::take_launched_shim() {
    if (!shim_ && launched_.valid()) shim_ = launched_.get();
    return shim_.has_value();
}

void EgressEnforcement::abandon() {
    try {
        take_launched_shim();  // a launch still under way ends first
    } catch (const std::exception&) {
        // it failed: nothing was left running
    }
    if (shim_) shim::stop_pending_shim(*shim_);
    shim_.reset();
    if (shim_cgroup_) shim_cgroup_->destroy();
    shim_cgroup_.reset();
}

void EgressEnforcement::place_shim(const ShimCgroupFactory& make_cgroup, ContainerState& st) {
    if (!plan_ || shim_cgroup_ || !take_launched_shim()) return;
    auto made = make_cgroup(shim_limits_);
    if (!made) {  // the container has no cgroup (rootless): nor has its shim
        shim::release_shim(*shim_);
        return;
    }
    refuse_existing_shim_cgroup(*made);
    shim_cgroup_ = std::move(made);
    container::place_shim(*shim_cgroup_, shim_->pid, shim_limits_);
    st.shim_cgroup = shim_cgroup_->to_state();
    shim::release_shim(*shim_);
}

egress::Enforcement EgressEnforcement::attach(const std::map<std::string, std::string>& cgroup_dirs,
                                              bool supervisor_mode_allowed, ContainerState& st) {
    const egress::KernelLayerTarget target = egress::kernel_layer_target(cgroup_dirs);
    tell_cgroup2_dir(target);  // if create has not (the thread waits for it)
    std::string why = target.why_not;
    if (why.empty()) {
        try {
            why = attached_.get();
        } catch (const std::future_error&) {
            why = "egress: the kernel layer's thread failed (internal error)";
        }
    }
    const egress::Enforcement mode = egress::choose_enforcement(why, supervisor_mode_allowed);
    kernel_mode_ = mode == egress::Enforcement::Kernel;
    st.egress_enforcement = egress::to_string(mode);
    // supervisor mode registered nothing in the kernel's tables: "" (delete looks nowhere)
    st.kernel_tables = kernel_mode_ ? egress::kernel_tables() : std::string();
    return mode;
}

void EgressEnforcement::take_registered_layer() {
    PreparedMaps prepared = maps_.get();
    if (!prepared.layer) throw Error(prepared.error);
    kernel_layer_ = std::move(prepared.layer);
}

void EgressEnforcement::hand_over(UniqueFd listener, ContainerState& st) {
    if (!plan_) return;
    if (!shim_) throw Error("egress shim: not placed before the hand-over (internal error)");
    if (kernel_mode_) take_registered_layer();
    st.shim_process = shim::finish_shim_launch(*shim_, std::move(listener), kernel_layer_ ? &*kernel_layer_ : nullptr, st.pid);
    st.shim = true;
}

nlohmann::json EgressEnforcement::update(const std::string& state_dir, const proc::Identity& init,
                                         const std::vector<std::string>& allow, const std::vector<std::string>& revoke) {
    const UniqueFd pidfd = proc::open_pidfd(init);
    if (!pidfd) throw Error("the container's init is gone: its egress policy cannot change");
    return shim::update_policy(state_dir, allow, revoke, pidfd.get(), init.pid);
}

}  // namespace sandlock::container

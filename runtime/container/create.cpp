#include "runtime/container/create.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "hooks/hooks.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/cgroups/manager.hpp"
#include "runtime/cgroups/resources.hpp"
#include "runtime/cgroups/systemd.hpp"
#include "runtime/container/egress_setup.hpp"
#include "runtime/container/init.hpp"
#include "runtime/container/process.hpp"
#include "runtime/container/shim_cgroup.hpp"
#include "runtime/container/sync.hpp"
#include "runtime/container/sync_parent.hpp"
#include "runtime/linux/identity.hpp"
#include "runtime/linux/kernel.hpp"
#include "runtime/linux/lsm.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/linux/rootfs.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"
#include "runtime/util/scope.hpp"

namespace sandlock::container {

namespace {

constexpr const char* kNeedsMountNs =
    " requires a mount namespace (.linux.namespaces has no \"mount\": the container shares "
    "the runtime's, where nothing is mounted for it)";

[[noreturn]] void needs_mount_ns(const std::string& field, const std::string& why = "") {
    throw Error(field + ":" + kNeedsMountNs + why);
}

// Without a mount namespace of its own the container shares the runtime's (the spec:
// an absent type is inherited) and is entered with chroot alone. Whatever would be a
// mount there would be a mount on the host, so each field that asks for one is refused.
void validate_shared_mount_ns(const spec::Config& cfg, const egress::Policy& policy) {
    if (cfg.linux.has_namespace(spec::NamespaceType::Mount)) return;
    const auto& l = cfg.linux;
    if (!cfg.mounts.empty()) needs_mount_ns(".mounts");
    if (cfg.root.readonly) needs_mount_ns(".root.readonly");
    if (!l.rootfs_propagation.empty()) needs_mount_ns(".linux.rootfsPropagation");
    if (!l.masked_paths.empty()) needs_mount_ns(".linux.maskedPaths");
    if (!l.readonly_paths.empty()) needs_mount_ns(".linux.readonlyPaths");
    if (!l.devices.empty()) needs_mount_ns(".linux.devices");
    if (!l.sysctl.empty()) needs_mount_ns(".linux.sysctl", " (/proc/sys would be the host's)");
    if (cfg.process->terminal) needs_mount_ns(".process.terminal", " (the pty is bound on /dev/console)");
    // The resolved names reach the container as a copy of /etc/hosts bound over its own.
    if (policy.active())
        throw Error(std::string("io.sandlock.network.* annotations: an egress policy") + kNeedsMountNs +
                    " (resolved names are bound over its /etc/hosts)");
}

}  // namespace

void validate_for_create(const spec::Config& cfg, const egress::Policy& policy) {
    if (!cfg.process) throw Error(".process: missing (create needs a process to run)");
    if (cfg.process->args.empty()) throw Error(".process.args: must not be empty");
    validate_shared_mount_ns(cfg, policy);
    if (!cfg.unsupported.empty())
        throw Error(cfg.unsupported.front().first + ": " + cfg.unsupported.front().second);
    os::check_process_labels(*cfg.process, ".process");
    os::check_mount_label(cfg.linux);
    if (!cfg.hostname.empty() && !cfg.linux.has_namespace(spec::NamespaceType::Uts))
        throw Error(".hostname: setting the hostname needs a uts namespace");
    if (!cfg.domainname.empty() && !cfg.linux.has_namespace(spec::NamespaceType::Uts))
        throw Error(".domainname: setting the domainname needs a uts namespace");
    os::validate_mounts(cfg);
    // The kernel allows one notify listener per filter chain: ours.
    if (policy.active() && cfg.linux.seccomp &&
        os::seccomp_uses_notify(*cfg.linux.seccomp))
        throw Error(".linux.seccomp: SCMP_ACT_NOTIFY cannot be combined with "
                    "io.sandlock.network.* (the egress shim owns the only notify listener)");
    if (cfg.linux.seccomp && os::seccomp_enabled(*cfg.linux.seccomp))
        os::validate_seccomp(*cfg.linux.seccomp);
    if (policy.active()) refuse_egress_bypassing_capabilities(*cfg.process, policy_source(cfg.annotations));
}

std::string hook_state_json(const ContainerState& st, Status status) {
    return oci_state(st, status).dump();
}

void write_pid_file(const std::string& path, pid_t pid) {
    // Atomic, as callers poll for the file and must never read it half-written.
    std::string abs = fs::absolute(path);
    fs::write_file_atomic(abs, std::to_string(pid), 0644);
}

namespace {

std::string resolve_rootfs(const spec::Config& cfg, const std::string& bundle) {
    std::string path = cfg.root.path;
    if (path.empty()) throw Error(".root.path: missing");
    if (path[0] != '/') path = fs::join(bundle, path);
    std::string abs = fs::absolute(path);
    char real[PATH_MAX];
    if (!::realpath(abs.c_str(), real) || !fs::is_dir(real))
        throw Error("rootfs (\"" + abs + "\") does not exist");
    return real;
}

// Moves fd above every fd the container may inherit, so passing fds 3..3+n
// can never clobber our own channel.
UniqueFd move_above(UniqueFd fd, int passed) {
    int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3 + passed);
    if (high < 0) throw_errno("fcntl F_DUPFD_CLOEXEC");
    return UniqueFd(high);
}

// The cgroupfs manager for the container's cgroupsPath; with --systemd-cgroup on a host
// that runs systemd, wrapped in the systemd driver (a transient unit owns the cgroup).
// With shim_limits: the egress shim's cgroup next to it instead (shim_cgroup.hpp).
std::unique_ptr<cgroups::Manager> make_cgroup_manager(os::Kernel& kernel, const spec::Config& cfg,
                                                      const CreateOptions& opts,
                                                      const cgroups::Resources& resources,
                                                      const ShimLimits* shim_limits = nullptr) {
    const cgroups::Hierarchy host = kernel.cgroup_hierarchy();
    auto unit = cgroups::systemd_unit(cfg.linux.cgroups_path, opts.id, opts.systemd_cgroup);
    const std::string path =
        unit ? unit->cgroup_path() : cgroups::resolve_cgroups_path(cfg.linux.cgroups_path, opts.id, false);
    const bool systemd = unit && cgroups::systemd_running();
    if (unit && !systemd)
        log::debug("--systemd-cgroup: systemd is not running here; " + unit->unit + " is a plain cgroupfs path");
    if (shim_limits) return make_shim_cgroup(host, path, systemd ? unit : std::nullopt, *shim_limits);
    auto fs = kernel.cgroup_manager(host, path);
    if (!systemd) return fs;
    auto properties = cgroups::systemd_resource_properties(resources, host.mode == cgroups::Mode::Unified);
    return cgroups::make_systemd_manager(std::move(fs), *unit, std::move(properties),
                                         cgroups::systemd_annotation_properties(cfg.annotations));
}

// Whether the spec asks for a limit (devices aside: a rootless container cannot have a
// device cgroup, and its user namespace already keeps it from making device nodes).
bool asks_for_limits(const cgroups::Resources& r) {
    return r.memory || r.cpu || r.pids_limit || r.block_io || !r.hugepage_limits.empty() || r.network ||
           !r.rdma.empty() || !r.unified.empty();
}

// The container's cgroup, made. Not root (rootless), a cgroup the user may not make is no
// error when the spec asks for no limit: the container runs without one (the null
// manager: pause, update and stats then say it has none), as crun does. Limits asked for
// and not grantable fail create, naming the cgroup.
std::unique_ptr<cgroups::Manager> make_container_cgroup(os::Kernel& kernel, const spec::Config& cfg,
                                                        const CreateOptions& opts,
                                                        const cgroups::Resources& resources) {
    auto cgroup = make_cgroup_manager(kernel, cfg, opts, resources);
    try {
        cgroup->create();
    } catch (const SystemError& e) {
        const bool not_ours = e.code() == EACCES || e.code() == EPERM || e.code() == EROFS;
        if (!os::rootless() || !not_ours || asks_for_limits(resources)) throw;
        log::debug(std::string("rootless: no cgroup (") + e.what() + "): the container runs without one");
        cgroup = cgroups::make_null_manager();
    }
    return cgroup;
}

// What a "cgroup" mount in the container shows: the container's own cgroup
// in each hierarchy (a name=systemd hierarchy appears as "systemd").
void set_cgroup_mount_sources(const cgroups::Manager& cgroup, os::RootfsOptions& opt) {
    for (const auto& [name, dir] : cgroup.dirs()) {
        if (name.empty()) {
            // On a hybrid host the cgroup2 hierarchy shows as /sys/fs/cgroup/unified.
            opt.cgroup2_path = dir;
            if (cgroup.kind() == cgroups::Kind::Hybrid) opt.cgroup_binds.push_back({dir, "unified"});
            continue;
        }
        std::string shown = name.rfind("name=", 0) == 0 ? name.substr(5) : name;
        opt.cgroup_binds.push_back({dir, shown});
    }
}

// The create protocol (sync.hpp); its steps that need the caller's state are set by it.
ParentHandlers create_handlers(const spec::Config& cfg, bool new_user, bool egress) {
    ParentHandlers h;
    h.order = {{SyncType::UsernsReady, new_user},
               {SyncType::JoinCgroup},
               {SyncType::LeaveCgroup, false},
               {SyncType::InitPid},
               {SyncType::RunHooks},
               {SyncType::Console, cfg.process->terminal},
               {SyncType::EgressListener, egress},
               {SyncType::SeccompListener, false},
               {SyncType::Ready}};
    if (cfg.linux.seccomp) h.seccomp = &*cfg.linux.seccomp;
    h.status = Status::Creating;
    return h;
}

// Stage 1 visits the container's cgroup only to make the cgroup namespace there, or
// for a driver whose cgroup comes into being with its first process (systemd):
// each cgroup v1 migration is a write per hierarchy under a global lock. Returns
// whether stage 1 joined.
bool join_cgroup_for_stage1(cgroups::Manager& cgroup, const cgroups::Resources& resources,
                            pid_t stage1, bool makes_cgroup_ns) {
    const bool joins = makes_cgroup_ns || cgroup.made_by_first_process();
    if (joins) cgroup.add_process(stage1);
    cgroup.apply(resources);
    return joins;
}

// Runs once init reports RunHooks: the hooks of the runtime's namespace. Returns the
// state they got, which init gives its createContainer and startContainer hooks, or ""
// when init has none (the state carries the annotations: 20 KB for init to receive and
// check with a policy of a thousand rules).
std::string run_runtime_hooks(const spec::Config& cfg, const ContainerState& st) {
    const spec::Hooks& h = cfg.hooks;
    const bool init_hooks = !h.create_container.empty() || !h.start_container.empty();
    if (h.prestart.empty() && h.create_runtime.empty() && !init_hooks) return "";
    // "created", as crun gives these hooks and the OCI validation suite expects: the
    // container's namespaces and init exist (runc says "creating"). createContainer
    // hooks get this same state from init.
    std::string state_json = hook_state_json(st, Status::Created);
    hooks::run_hooks(h.prestart, state_json, "prestart");
    hooks::run_hooks(h.create_runtime, state_json, "createRuntime");
    return init_hooks ? state_json : "";
}

}  // namespace

CreateResult create_container(const StateStore& store, const CreateOptions& opts, os::Kernel& kernel) {
    validate_id(opts.id);
    const std::string bundle = fs::absolute(opts.bundle.empty() ? "." : opts.bundle);
    spec::Config cfg = spec::load_config(bundle);
    // Parsed once: validation and the egress plan both use it.
    egress::Policy policy = config::effective_policy(cfg.annotations, opts.operator_config);
    validate_for_create(cfg, policy);
    cgroups::Resources resources = cgroups::parse_resources(cfg.linux.resources);
    cgroups::add_default_devices(resources, cfg.linux.devices);
    check_console_destination(cfg.process->terminal, opts.detached, opts.console_socket);
    const std::string rootfs = resolve_rootfs(cfg, bundle);
    add_listen_env(cfg.process->env);

    store.create_dir(opts.id);
    ScopeExit remove_state([&] { store.remove_dir(opts.id); });
    const std::string state_dir = store.dir(opts.id);
    // Landlock, the notify filter, the kernel layer, /etc/hosts and the shim: one owner,
    // which undoes its part should create fail.
    EgressEnforcement egress_owner(cfg, std::move(policy), bundle, rootfs, state_dir);
    fs::write_file_atomic(store.config_path(opts.id), fs::read_file(fs::join(bundle, "config.json")),
                          0600);

    CreateResult result;
    ContainerState& st = result.state;
    st.id = opts.id;
    st.bundle = bundle;
    st.rootfs = rootfs;
    st.owner = ::geteuid();
    st.annotations = cfg.annotations;

    auto cgroup = make_container_cgroup(kernel, cfg, opts, resources);
    // (systemd's comes into being with stage 1: attach tells the owner then)
    if (!cgroup->made_by_first_process()) egress_owner.cgroup_made(cgroup->dirs());
    // On failure: the shim, then its cgroup, then the container's.
    ScopeExit remove_cgroup([&] {
        try {
            egress_owner.abandon();
        } catch (const std::exception& e) {
            log::warn(std::string("egress shim: ") + e.what());
        }
        cgroup->destroy();
    });
    st.cgroup = cgroup->to_state();

    const int passed = passed_fd_count(opts.preserve_fds);
    UniqueFd fifo = move_above(kernel.make_exec_fifo(store.fifo_path(opts.id)), passed);
    os::NamespacePlan plan = os::plan_namespaces(cfg.linux);
    auto [parent_sock, child_sock] = SyncSocket::make_pair();
    child_sock = SyncSocket(move_above(UniqueFd(::dup(child_sock.get())), passed));

    InitContext ctx;
    ctx.cfg = &cfg;
    ctx.rootfs = rootfs;
    ctx.fifo_fd = fifo.get();
    ctx.passed_fds = passed;
    ctx.no_pivot = opts.no_pivot;
    ctx.no_new_keyring = opts.no_new_keyring;
    ctx.container_id = opts.id;
    ctx.rootfs_options.user_ns = cfg.linux.has_namespace(spec::NamespaceType::User);
    set_cgroup_mount_sources(*cgroup, ctx.rootfs_options);
    ctx.rootfs_options.bundle_dir = bundle;
    ctx.egress = egress_owner.plan();

    const pid_t stage1 = kernel.start_child(child_sock.get(), [&] {
        parent_sock.close();
        run_stage1(child_sock, plan, ctx);
    });
    child_sock.close();
    fifo.reset();
    pid_t init_pid = -1;
    bool stage1_reaped = false;
    ScopeExit stop_init([&] {
        kernel.kill_and_reap(init_pid);
        if (!stage1_reaped) {
            kernel.kill(stage1);
            kernel.wait_child(stage1);
        }
    });
    // The shim's launch and the maps, on the owner's thread now that stage 1 is forked.
    egress_owner.start();

    ParentHandlers handlers = create_handlers(cfg, plan.new_user, egress_owner.active());
    handlers.console_socket = opts.console_socket;
    handlers.container = &st;
    handlers.userns_ready = [&] {
        kernel.write_id_mappings(stage1, cfg.linux.uid_mappings, cfg.linux.gid_mappings);
    };
    handlers.join_cgroup = [&](bool makes_cgroup_ns) {
        const bool joined = join_cgroup_for_stage1(*cgroup, resources, stage1, makes_cgroup_ns);
        st.cgroup = cgroup->to_state();  // the systemd driver has started its unit now
        return joined;
    };
    // The setup is not charged to the container: see sync.hpp.
    handlers.leave_cgroup = [&] { cgroup->add_process_to_own_cgroup(stage1); };
    // The kernel's own egress check, attached here and handed to the shim that keeps its
    // maps. Nothing of the container is in the cgroup until init joins it below, parked
    // before execve, and the hooks judge by the socket's cgroup at call time. Init learns
    // the mode before it installs its filter (EgressMode; stage 1 reads nothing after
    // its cgroup step).
    handlers.after_cgroup_step = [&] {
        if (!egress_owner.active()) return;
        const egress::Enforcement mode = egress_owner.attach(cgroup->dirs(), opts.supervisor_mode_allowed, st);
        if (mode == egress::Enforcement::Kernel)
            refuse_inherited_ip_sockets(passed, !cfg.process->terminal, policy_source(cfg.annotations));
        parent_sock.send(msg::EgressMode{mode});
    };
    handlers.init_pid = [&](pid_t pid) {
        init_pid = pid;
        kernel.wait_child(stage1);
        stage1_reaped = true;
        auto start_time = kernel.start_time(init_pid);
        if (!start_time) throw Error("container init exited during setup");
        st.pid = init_pid;
        st.init_start_time = *start_time;
    };
    handlers.run_hooks = [&] { return run_runtime_hooks(cfg, st); };
    // The shim into its cgroup once init has HooksDone and sets up its root: done earlier
    // (when init's pid came) it kept init waiting for HooksDone through the shim's execve
    // and the cgroup's making (1-3 ms here). The shim is needed only at the hand-over.
    handlers.after_hooks = [&] {
        egress_owner.place_shim(
            [&](const ShimLimits& limits) -> std::unique_ptr<cgroups::Manager> {
                if (cgroup->kind() == cgroups::Kind::None) return nullptr;
                return make_cgroup_manager(kernel, cfg, opts, resources, &limits);
            },
            st);
    };
    UniqueFd egress_listener;
    handlers.egress_listener = [&](UniqueFd fd) { egress_listener = std::move(fd); };

    try {
        Served served = serve_child(parent_sock, handlers);
        result.console_master = std::move(served.console_master);
        // init is parked before execve: from here on, what it uses is the workload's.
        cgroup->add_process(init_pid);
        egress_owner.hand_over(std::move(egress_listener), st);
    } catch (const Error&) {
        // The spec: a failed create still runs poststop hooks (as warnings), once init
        // was recorded (st.pid).
        if (st.pid > 0) {
            for (const auto& w : hooks::run_hooks_warn(cfg.hooks.poststop,
                                                       hook_state_json(st, Status::Stopped), "poststop"))
                log::warn(w);
        }
        throw;
    }
    st.created = log::rfc3339_now();
    store.save(st);
    if (!opts.pid_file.empty()) write_pid_file(opts.pid_file, init_pid);

    stop_init.dismiss();
    egress_owner.commit();
    remove_cgroup.dismiss();
    remove_state.dismiss();
    return result;
}

}  // namespace sandlock::container

#include "runtime/container/exec.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/cgroups/manager.hpp"
#include "runtime/container/create.hpp"
#include "runtime/container/egress_setup.hpp"
#include "runtime/container/foreground.hpp"
#include "runtime/container/init.hpp"
#include "runtime/container/process.hpp"
#include "runtime/container/sync.hpp"
#include "runtime/container/sync_parent.hpp"
#include "runtime/linux/identity.hpp"
#include "runtime/linux/kernel.hpp"
#include "runtime/linux/lsm.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/scope.hpp"

namespace sandlock::container {
namespace {

uint32_t parse_id(const std::string& text, const char* what) {
    try {
        size_t used = 0;
        unsigned long v = std::stoul(text, &used);
        if (used != text.size() || v > 0xffffffffUL) throw std::invalid_argument(what);
        return static_cast<uint32_t>(v);
    } catch (const std::exception&) {
        throw Error(std::string("parsing ") + what + " \"" + text + "\": not a number");
    }
}

void append_all(std::vector<std::string>& to, const std::vector<std::string>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

[[noreturn]] void run_exec_process(SyncSocket& sock, const spec::Process& process,
                                   const spec::Config& cfg, int passed_fds,
                                   const EgressPlan* egress) {
    std::string executable;
    try {
        if (::setsid() < 0) throw_errno("setsid");
        os::apply_rlimits(process.rlimits);
        setup_console(process, sock, /*bind_dev_console=*/false);
        prepare_inherited_fds(passed_fds);
        executable = finish_process_setup(process, cfg, sock, egress);
        // Into the container's cgroup only now, so the setup is not charged there (sync.hpp).
        sock.send(msg::JoinCgroup{});
        sock.expect<msg::CgroupJoined>();
        sock.send(msg::Ready{});
        // The socket stays open (O_CLOEXEC) until execve: the parent returns
        // only once the process runs its own program (sync.hpp).
        exec_process(executable, process);
    } catch (const std::exception& e) {
        fail_to_parent(sock, e.what());
    }
    ::_exit(127);
}

[[noreturn]] void run_exec_stage1(SyncSocket& sock, os::NamespacePlan& plan,
                                  const spec::Process& process, const spec::Config& cfg,
                                  int passed_fds, const EgressPlan* egress) {
    try {
        unblock_all_signals();
        os::join_namespaces(plan);
        fork_and_report_pid(sock, [&] { run_exec_process(sock, process, cfg, passed_fds, egress); });
    } catch (const std::exception& e) {
        fail_to_parent(sock, e.what());
    }
    ::_exit(0);
}

// The exec protocol (sync.hpp); its steps that need the caller's state are set by it.
ParentHandlers exec_handlers(const spec::Process& process, const spec::Config& cfg, bool egress) {
    ParentHandlers h;
    h.order = {{SyncType::InitPid},
               {SyncType::Console, process.terminal},
               {SyncType::EgressListener, egress},
               {SyncType::SeccompListener, false},
               {SyncType::JoinCgroup},
               {SyncType::Ready}};
    // An exec'd process's OCI listener goes where init's went.
    if (cfg.linux.seccomp) h.seccomp = &*cfg.linux.seccomp;
    return h;
}

}  // namespace

spec::Process build_exec_process(const spec::Config& cfg, const ExecOptions& opts) {
    if (!opts.process_file.empty()) return spec::load_process(opts.process_file);
    if (opts.args.empty()) throw Error("exec: at least one argument (the command) is required");
    spec::Process p = cfg.process ? *cfg.process : spec::Process{};
    p.args = opts.args;
    if (!opts.cwd.empty()) p.cwd = opts.cwd;
    append_all(p.env, opts.env);
    p.terminal = opts.tty;
    if (!opts.user.empty()) {
        auto colon = opts.user.find(':');
        p.user.uid = parse_id(opts.user.substr(0, colon), "uid");
        if (colon != std::string::npos) p.user.gid = parse_id(opts.user.substr(colon + 1), "gid");
        p.user.username.clear();
    }
    p.user.additional_gids.insert(p.user.additional_gids.end(), opts.additional_gids.begin(),
                                  opts.additional_gids.end());
    if (!opts.caps.empty()) {
        if (!p.capabilities) p.capabilities = spec::Capabilities{};
        append_all(p.capabilities->bounding, opts.caps);
        append_all(p.capabilities->effective, opts.caps);
        append_all(p.capabilities->permitted, opts.caps);
        append_all(p.capabilities->ambient, opts.caps);
    }
    if (opts.no_new_privs) p.no_new_privileges = true;
    if (!opts.apparmor.empty()) p.apparmor_profile = opts.apparmor;
    if (!opts.process_label.empty()) p.selinux_label = opts.process_label;
    if (p.capabilities) os::validate_capabilities(*p.capabilities, ".process.capabilities");
    return p;
}

int exec_in_container(const StateStore& store, const ContainerState& st, Status status, const ExecOptions& opts,
                      os::Kernel& kernel) {
    spec::Config cfg =
        spec::parse_config(nlohmann::json::parse(fs::read_file(store.config_path(opts.id))));
    if (!opts.cgroup.empty())
        throw Error("exec --cgroup \"" + opts.cgroup + "\": sub-cgroups are not supported "
                    "(the process joins the container's cgroup)");
    spec::Process process = build_exec_process(cfg, opts);
    os::check_process_labels(process, opts.process_file.empty() ? ".process" : "");
    check_console_destination(process.terminal, opts.detach, opts.console_socket);
    add_listen_env(process.env);

    // Every process of a confined container is confined: without its shim, no exec.
    std::optional<EgressPlan> egress = load_egress_plan(cfg, store.dir(opts.id), st.egress_enforcement);
    if (st.shim && !egress) throw Error("egress policy of container " + opts.id + " is missing");
    if (egress) refuse_egress_bypassing_capabilities(process, policy_source(cfg.annotations));
    if (egress && egress->enforcement == egress::Enforcement::Kernel)
        refuse_inherited_ip_sockets(passed_fd_count(opts.preserve_fds), !process.terminal, policy_source(cfg.annotations));
    os::NamespacePlan plan = kernel.plan_join_process(st.pid, cfg.linux);
    auto cgroup = st.cgroup.is_null() ? nullptr : kernel.open_cgroup_manager(st.cgroup);
    const int passed = passed_fd_count(opts.preserve_fds);
    if (!opts.detach) {
        become_subreaper();
        block_forwarded_signals();
    }
    auto [parent_sock, child_sock] = SyncSocket::make_pair();
    child_sock = SyncSocket(UniqueFd(::fcntl(child_sock.get(), F_DUPFD_CLOEXEC, 3 + passed)));
    const pid_t stage1 = kernel.start_child(child_sock.get(), [&] {
        parent_sock.close();
        run_exec_stage1(child_sock, plan, process, cfg, passed, egress ? &*egress : nullptr);
    });
    child_sock.close();
    pid_t child = -1;
    ScopeExit kill_child([&] {
        if (child > 0) kernel.kill(child);
        kernel.kill(stage1);
        kernel.wait_child(stage1);
        if (child > 0 && !opts.detach) kernel.wait_child(child);
    });

    ParentHandlers handlers = exec_handlers(process, cfg, egress.has_value());
    handlers.console_socket = opts.console_socket;
    handlers.container = &st;
    handlers.status = status;
    handlers.init_pid = [&](pid_t pid) {
        child = pid;
        kernel.wait_child(stage1);
    };
    handlers.egress_listener = [&](UniqueFd fd) { shim::register_listener(store.dir(opts.id), fd.get()); };
    handlers.join_cgroup = [&](bool) {
        if (cgroup) cgroup->add_process(child);
        return false;
    };
    Served served = serve_child(parent_sock, handlers);
    parent_sock.wait_for_execve();
    if (!opts.pid_file.empty()) write_pid_file(opts.pid_file, child);
    kill_child.dismiss();
    if (opts.detach) return 0;
    return wait_foreground(child, std::move(served.console_master));
}

}  // namespace sandlock::container

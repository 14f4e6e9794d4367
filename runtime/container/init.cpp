#include "runtime/container/init.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "hooks/hooks.hpp"
#include "runtime/container/foreground.hpp"
#include "runtime/container/process.hpp"
#include "runtime/linux/devices.hpp"
#include "runtime/linux/identity.hpp"
#include "runtime/linux/lsm.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/linux/terminal.hpp"
#include "runtime/util/error.hpp"

#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

namespace sandlock::container {
namespace {

void become_root_in_userns() {
    if (::setresgid(0, 0, 0) != 0) throw_errno("setresgid in user namespace");
    if (::setresuid(0, 0, 0) != 0) throw_errno("setresuid in user namespace");
}

void join_session_keyring(const std::string& id) {
    // A fresh session keyring keeps the container's keys away from the host's.
    std::string name = "_ses." + id;
    if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.c_str()) < 0 && errno != ENOSYS &&
        errno != EPERM && errno != EACCES)
        throw_errno("join session keyring");
}

void chdir_or_throw(const std::string& cwd) {
    if (::chdir(cwd.c_str()) != 0) throw_errno("chdir to cwd (\"" + cwd + "\") set in config.json failed");
}

}  // namespace

void setup_console(const spec::Process& process, SyncSocket& sock, bool bind_dev_console) {
    if (!process.terminal) return;
    os::Pty pty = os::open_pty(process.console_size);
    // The master is closed here once sent: the parent holds it.
    sock.send(msg::Console{pty.slave_name, std::move(pty.master)});
    if (bind_dev_console) os::mount_console(pty.slave_name);
    os::attach_to_pty(pty.slave.get());
}

namespace {

// init's /proc/self/fd, opened before it enters the rootfs, for a rootfs without a /proc
// (no mount namespace of its own, or none mounted): the exec fifo is reopened through it.
// Above the fds passed to the container (as create's own channel is), so it is never one
// of the numbers prepare_inherited_fds() hands to the process.
UniqueFd open_proc_fds(int passed) {
    UniqueFd dir(::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) throw_errno("open /proc/self/fd");
    UniqueFd high(::fcntl(dir.get(), F_DUPFD_CLOEXEC, 3 + passed));
    if (!high) throw_errno("fcntl F_DUPFD_CLOEXEC");
    return high;
}

// A host procfs fd must not stay open in a process the container can reach through its
// own /proc (/proc/1/fd/N leads out to the host's /proc/sys): dropped as soon as the
// container's /proc serves. Without one, no container process can reach init's fds.
void drop_proc_fds_if_proc_serves(UniqueFd& proc_fds) {
    if (::access("/proc/self/fd", F_OK) == 0) proc_fds.reset();
}

// Returns the fifo's write end, to be held until execve closes it (O_CLOEXEC):
// `start` waits for that EOF before its poststart hooks, so they run after
// the startContainer hooks and after the user's process was executed.
UniqueFd wait_for_start(const UniqueFd& proc_fds, int fifo_fd) {
    const std::string name = std::to_string(fifo_fd);
    UniqueFd fifo(proc_fds ? ::openat(proc_fds.get(), name.c_str(), O_WRONLY | O_CLOEXEC)
                           : ::open(("/proc/self/fd/" + name).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fifo) throw_errno("open exec fifo");
    if (::write(fifo.get(), "0", 1) != 1) throw_errno("write exec fifo");
    return fifo;
}

std::string state_with_status(const std::string& state_json, const char* status) {
    auto j = nlohmann::ordered_json::parse(state_json);
    j["status"] = status;
    return j.dump();
}

[[noreturn]] void run_init(SyncSocket& sock, const InitContext& ctx) {
    const spec::Config& cfg = *ctx.cfg;
    const spec::Process& process = *cfg.process;
    std::string state_json;
    std::string executable;
    UniqueFd proc_fds;
    try {
        if (::setsid() < 0) throw_errno("setsid");
        proc_fds = open_proc_fds(ctx.passed_fds);
        // Absent from linux.namespaces, the mount namespace is the runtime's (inherited,
        // as the spec says): nothing may be mounted there, so chroot is the only step.
        const bool own_mount_ns = cfg.linux.has_namespace(spec::NamespaceType::Mount);
        if (own_mount_ns) os::prepare_rootfs(cfg, ctx.rootfs, ctx.rootfs_options);
        sock.send(msg::RunHooks{});
        // Read only now, so that the mount work above overlaps create's attach of the
        // kernel layer; create sent it before it read InitPid, so it comes before HooksDone.
        if (ctx.egress) {
            msg::EgressMode m = sock.expect<msg::EgressMode>();
            ctx.egress->enforcement = m.mode;
        }
        state_json = sock.expect<msg::HooksDone>().state_json;
        hooks::run_hooks(cfg.hooks.create_container, state_json, "createContainer");
        if (own_mount_ns)
            os::enter_rootfs(ctx.rootfs, ctx.no_pivot);
        else
            os::chroot_into(cfg, ctx.rootfs);
        if (!cfg.hostname.empty()) os::set_hostname(cfg.hostname);
        if (!cfg.domainname.empty()) os::set_domainname(cfg.domainname);
        // sysctl and /dev/console need a writable /proc/sys and /dev: before finish_rootfs.
        os::apply_sysctl(cfg.linux.sysctl);
        setup_console(process, sock, /*bind_dev_console=*/true);
        if (own_mount_ns) os::finish_rootfs(cfg);
        drop_proc_fds_if_proc_serves(proc_fds);
        if (!ctx.no_new_keyring) join_session_keyring(ctx.container_id);
        os::apply_rlimits(process.rlimits);
        os::apply_oom_score_adj(process.oom_score_adj);
        os::apply_personality(cfg.linux.personality);
        prepare_inherited_fds(ctx.passed_fds);
        executable = finish_process_setup(process, cfg, sock, ctx.egress);
        sock.send(msg::Ready{});
        sock.close();
    } catch (const std::exception& e) {
        fail_to_parent(sock, e.what());
    }
    // Parked until `start`; failures from here on can only be told on stderr.
    try {
        UniqueFd started = wait_for_start(proc_fds, ctx.fifo_fd);
        proc_fds.reset();
        if (!cfg.hooks.start_container.empty())
            hooks::run_hooks(cfg.hooks.start_container, state_with_status(state_json, "created"),
                             "startContainer");
        exec_process(executable, process);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        ::_exit(127);
    }
}

}  // namespace

void fail_to_parent(SyncSocket& sock, const std::string& message) {
    try {
        sock.send(msg::Error{message});
    } catch (...) {
        // The parent has hung up: it has failed already and reports its own error (one
        // line); a second one from here would only be the consequence of its undo.
    }
    ::_exit(1);
}

void report_seccomp_listener(SyncSocket& sock, int fd) {
    sock.send(msg::SeccompListener{.fd = fd});
    sock.expect<msg::SeccompDone>();
}

static void load_oci_seccomp(const spec::Config& cfg, SyncSocket& sock) {
    if (!cfg.linux.seccomp || !os::seccomp_enabled(*cfg.linux.seccomp)) return;
    UniqueFd listener = os::install_seccomp(*cfg.linux.seccomp);
    if (listener) report_seccomp_listener(sock, listener.get());
}

std::string finish_process_setup(const spec::Process& process, const spec::Config& cfg,
                                 SyncSocket& sock, const EgressPlan* egress) {
    // chdir as root first: the user may not be able to traverse to cwd's
    // parents; retried after the identity switch for root-squashed mounts.
    bool in_cwd = ::chdir(process.cwd.c_str()) == 0;
    std::string executable;
    // Takes effect at execve; before no_new_privs, which would limit the transition.
    os::apply_apparmor_profile(process.apparmor_profile);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
    // before the capabilities are dropped. With it, load it as late as
    // possible so the profile constrains as little of our own setup as it can.
    // Egress first: the OCI filter stacks after it, and both go in before
    // the capabilities that Landlock and seccomp need without no_new_privs.
    if (!process.no_new_privileges) {
        if (egress) confine_egress(*egress, sock);
        load_oci_seccomp(cfg, sock);
    }
    os::finalize_identity(process);
    if (!in_cwd) chdir_or_throw(process.cwd);
    executable = lookup_executable(process.args[0], process.env);
    if (process.no_new_privileges) {
        os::set_no_new_privileges();
        if (egress) confine_egress(*egress, sock);
        load_oci_seccomp(cfg, sock);
    }
    return executable;
}

void fork_and_report_pid(SyncSocket& sock, const std::function<void()>& run_child) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd gate_read(ends[0]), gate_write(ends[1]);
    pid_t child = ::fork();
    if (child < 0) throw_errno("fork");
    if (child == 0) {
        // EOF once stage 1 has sent InitPid and closed its end.
        gate_write.reset();
        char byte;
        while (::read(gate_read.get(), &byte, 1) < 0 && errno == EINTR) {
        }
        gate_read.reset();
        run_child();
        ::_exit(1);
    }
    sock.send(msg::InitPid{.pid = child});
}

void run_stage1(SyncSocket& sock, os::NamespacePlan& plan, const InitContext& ctx) {
    try {
        unblock_all_signals();
        os::join_namespaces(plan);
        if (plan.new_user) {
            os::unshare_namespaces(CLONE_NEWUSER);
            sock.send(msg::UsernsReady{});
            sock.expect<msg::UsernsMapped>();
            become_root_in_userns();
        }
        // The cgroup namespace's root is the cgroup we are in when it is made;
        // everything else is set up outside the container's cgroup (sync.hpp).
        const bool new_cgroup_ns = plan.unshare_flags & CLONE_NEWCGROUP;
        sock.send(msg::JoinCgroup{.makes_cgroup_ns = new_cgroup_ns});
        const bool joined = sock.expect<msg::CgroupJoined>().joined;
        if (new_cgroup_ns) os::unshare_namespaces(CLONE_NEWCGROUP);
        if (joined) {
            sock.send(msg::LeaveCgroup{});
            sock.expect<msg::CgroupLeft>();
        }
        os::unshare_namespaces(plan.unshare_flags & ~CLONE_NEWCGROUP);
        if (ctx.cfg->linux.has_namespace(spec::NamespaceType::Time) &&
            !ctx.cfg->linux.find_namespace(spec::NamespaceType::Time)->path.size())
            os::write_time_offsets(ctx.cfg->linux.time_offsets);
        fork_and_report_pid(sock, [&] { run_init(sock, ctx); });
    } catch (const std::exception& e) {
        fail_to_parent(sock, e.what());
    }
    ::_exit(0);
}

}  // namespace sandlock::container

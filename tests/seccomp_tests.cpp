// The OCI seccomp layer: validation messages, the generated program, and real
// filters installed in forked children (each child reports through its exit status).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "runtime/linux/seccomp.hpp"
#include "runtime/util/error.hpp"
#include "tests/support.hpp"
#include "runtime/util/unix_socket.hpp"

namespace seccomp {
using namespace sandlock;
using sandlock::testing::Child;
using sandlock::testing::exiting_with;
using sandlock::os::SeccompProgram;

spec::SeccompArg arg(unsigned index, const std::string& op, uint64_t value, uint64_t value_two = 0) {
    spec::SeccompArg a;
    a.index = index;
    a.op = op;
    a.value = value;
    a.value_two = value_two;
    return a;
}

spec::SeccompSyscall rule(std::vector<std::string> names, const std::string& action,
                          std::optional<uint32_t> errno_ret = std::nullopt,
                          std::vector<spec::SeccompArg> args = {}) {
    spec::SeccompSyscall s;
    s.names = std::move(names);
    s.action = action;
    s.errno_ret = errno_ret;
    s.args = std::move(args);
    return s;
}

spec::Seccomp profile(const std::string& default_action, std::vector<spec::SeccompSyscall> syscalls) {
    spec::Seccomp s;
    s.default_action = default_action;
    s.syscalls = std::move(syscalls);
    return s;
}

std::string validation_error(const spec::Seccomp& s) {
    try {
        os::validate_seccomp(s);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// Loads prog in a child with no_new_privs set, then runs check (its exit status).
int run_filtered(const SeccompProgram& prog, SeccompProgram::Loader loader,
                 const std::function<int()>& check) {
    Child child(exiting_with([&] {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 97;
        UniqueFd listener = prog.load(loader);
        return check();
    }));
    return child.wait();
}

// 0 when syscall result r failed with errno want, else a code naming what happened.
int expect_errno(long r, int want) {
    if (r != -1) return 10;
    return errno == want ? 0 : 20;
}

// What a child needs after a deny-by-default filter: exit, and memory for sanitizer
// runtimes (all numbered below exit_group, so the ENOSYS stub's bound stays 231).
const std::vector<std::string> kChildBasics = {"exit_group", "exit",   "getpid", "mmap", "munmap",
                                               "mprotect",   "brk",    "madvise", "write", "close",
                                               "rt_sigprocmask", "rt_sigaction", "sigaltstack"};

std::string temp_dir() {
    char tmpl[] = "/tmp/sandlock-seccomp-XXXXXX";
    if (!::mkdtemp(tmpl)) throw_errno("mkdtemp");
    return tmpl;
}

}  // namespace seccomp

BOOST_AUTO_TEST_SUITE(seccomp)

BOOST_AUTO_TEST_CASE(validation_messages) {
    BOOST_CHECK_EQUAL(validation_error(profile("SCMP_ACT_FOO", {})),
                      ".linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\"");
    BOOST_CHECK_EQUAL(validation_error(profile("", {rule({"mkdir"}, "SCMP_ACT_ALLOW")})),
                      ".linux.seccomp.defaultAction: must be set");
    BOOST_CHECK_EQUAL(validation_error(profile("SCMP_ACT_NOTIFY", {})),
                      ".linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action");

    auto s = profile("SCMP_ACT_ALLOW", {});
    s.default_errno_ret = 5;
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or "
                      "SCMP_ACT_TRACE, not SCMP_ACT_ALLOW");

    s = profile("SCMP_ACT_ERRNO", {});
    s.default_errno_ret = 70000;
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.defaultErrnoRet: 70000 out of range (at most 65535)");

    s = profile("SCMP_ACT_ALLOW", {});
    s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"");

    s = profile("SCMP_ACT_ALLOW", {});
    s.architectures = {"SCMP_ARCH_X86", "SCMP_ARCH_S390X"};
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.architectures[1]: SCMP_ARCH_S390X cannot share a filter with "
                      "the native architecture (byte order differs)");

    s = profile("SCMP_ACT_ALLOW", {});
    s.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FOO"};
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_FOO\"");

    s = profile("SCMP_ACT_ERRNO", {rule({"read"}, "SCMP_ACT_ALLOW"), rule({"mkdir"}, "SCMP_ACT_BAR")});
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_BAR\"");

    s = profile("SCMP_ACT_ERRNO", {rule({"read"}, "SCMP_ACT_ALLOW", 1)});
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or "
                      "SCMP_ACT_TRACE, not SCMP_ACT_ALLOW");

    s = profile("SCMP_ACT_ERRNO", {rule({}, "SCMP_ACT_ALLOW")});
    BOOST_CHECK_EQUAL(validation_error(s), ".linux.seccomp.syscalls[0].names: must not be empty");

    s = profile("SCMP_ACT_ERRNO", {rule({"read", ""}, "SCMP_ACT_ALLOW")});
    BOOST_CHECK_EQUAL(validation_error(s), ".linux.seccomp.syscalls[0].names[1]: empty syscall name");

    s = profile("SCMP_ACT_ALLOW", {rule({"read"}, "SCMP_ACT_ERRNO", std::nullopt,
                                        {arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_FOO", 2)})});
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.syscalls[0].args[1].op: unknown operator \"SCMP_CMP_FOO\"");

    s = profile("SCMP_ACT_ALLOW", {rule({"read"}, "SCMP_ACT_ERRNO", std::nullopt,
                                        {arg(6, "SCMP_CMP_EQ", 1)})});
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.syscalls[0].args[0].index: 6 out of range (a syscall has 6 "
                      "arguments, 0-5)");

    s = profile("SCMP_ACT_ALLOW", {rule({"mkdir", "write"}, "SCMP_ACT_NOTIFY")});
    s.listener_path = "/run/agent.sock";
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the "
                      "write syscall");

    s = profile("SCMP_ACT_ALLOW", {rule({"mkdir"}, "SCMP_ACT_NOTIFY")});
    BOOST_CHECK_EQUAL(validation_error(s),
                      ".linux.seccomp.listenerPath: seccomp listenerPath is not set "
                      "(SCMP_ACT_NOTIFY is used)");
    s.listener_path = "/run/agent.sock";
    BOOST_CHECK_EQUAL(validation_error(s), "");
}

BOOST_AUTO_TEST_CASE(valid_profiles_and_ignored_names) {
    // Unknown syscall names are skipped, as runc does; every action is accepted.
    auto s = profile("SCMP_ACT_ERRNO",
                     {rule({"read", "no_such_syscall_2099"}, "SCMP_ACT_ALLOW"),
                      rule({"getppid"}, "SCMP_ACT_KILL"), rule({"getpgrp"}, "SCMP_ACT_KILL_PROCESS"),
                      rule({"getuid"}, "SCMP_ACT_KILL_THREAD"), rule({"getgid"}, "SCMP_ACT_TRAP"),
                      rule({"geteuid"}, "SCMP_ACT_TRACE", 7), rule({"getegid"}, "SCMP_ACT_LOG"),
                      rule({"mkdir"}, "SCMP_ACT_NOTIFY"),
                      // Same action as the default: dropped (libseccomp would refuse it).
                      rule({"rmdir"}, "SCMP_ACT_ERRNO")});
    s.listener_path = "/run/agent.sock";
    s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
    BOOST_CHECK_EQUAL(validation_error(s), "");
    SeccompProgram p(s);
    BOOST_CHECK(p.uses_notify());
    BOOST_REQUIRE_EQUAL(p.ignored_syscalls().size(), 1u);
    BOOST_CHECK_EQUAL(p.ignored_syscalls()[0], "no_such_syscall_2099");
    const std::string pfc = p.pfc();
    BOOST_CHECK(contains(pfc, "action TRACE(7);"));
    BOOST_CHECK(contains(pfc, "action 0x7fc00000;"));  // libseccomp 2.5 prints NOTIFY raw
    BOOST_CHECK(contains(pfc, "action KILL_PROCESS;"));
    BOOST_CHECK(contains(pfc, "action TRAP;"));
    BOOST_CHECK(contains(pfc, "action LOG;"));
    BOOST_CHECK(!contains(pfc, "\"rmdir\""));
    // Default ERRNO without errnoRet is EPERM.
    BOOST_CHECK(contains(pfc, "action ERRNO(1);"));

    unsigned flags = p.filter_flags();
    BOOST_CHECK(flags & SECCOMP_FILTER_FLAG_LOG);
    BOOST_CHECK(flags & SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    BOOST_CHECK(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER);
    BOOST_CHECK(!(flags & SECCOMP_FILTER_FLAG_TSYNC));
    BOOST_CHECK_EQUAL(bool(flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV),
                      os::kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV));

    // Disabled profile (runc: no defaultAction and no syscalls).
    BOOST_CHECK(!os::seccomp_enabled(spec::Seccomp{}));
    BOOST_CHECK_EQUAL(validation_error(spec::Seccomp{}), "");
}

BOOST_AUTO_TEST_CASE(known_names) {
    auto actions = os::seccomp_known_actions();
    BOOST_CHECK_EQUAL(actions.size(), 9u);
    BOOST_CHECK(std::is_sorted(actions.begin(), actions.end()));
    BOOST_CHECK_EQUAL(os::seccomp_known_operators().size(), 7u);
    auto arches = os::seccomp_known_architectures();
    BOOST_CHECK(std::find(arches.begin(), arches.end(), "SCMP_ARCH_AARCH64") != arches.end());
    BOOST_CHECK_EQUAL(os::seccomp_known_flags().size(), 4u);
    auto supported = os::seccomp_supported_flags();
    BOOST_CHECK(std::find(supported.begin(), supported.end(), "SECCOMP_FILTER_FLAG_LOG") !=
                supported.end());
    BOOST_CHECK(os::kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_SPEC_ALLOW));
    BOOST_CHECK(!os::kernel_supports_filter_flag(1u << 30));
}

BOOST_AUTO_TEST_CASE(podman_like_profile) {
    auto s = profile("SCMP_ACT_ERRNO",
                     {rule({"accept", "read", "write", "mkdir", "openat", "close", "exit_group",
                            "landlock_create_ruleset", "futex_waitv", "some_future_syscall"},
                           "SCMP_ACT_ALLOW"),
                      rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_EQ", 0)}),
                      rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt,
                           {arg(0, "SCMP_CMP_EQ", 4294967295)}),
                      rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt,
                           {arg(0, "SCMP_CMP_MASKED_EQ", 2114060288, 0)}),
                      rule({"clone3"}, "SCMP_ACT_ERRNO", 38),
                      rule({"socket"}, "SCMP_ACT_ERRNO", 13,
                           {arg(0, "SCMP_CMP_EQ", 16), arg(2, "SCMP_CMP_EQ", 9)})});
    s.default_errno_ret = 1;
    s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
    SeccompProgram p(s);
    const std::string pfc = p.pfc();
    BOOST_TEST_MESSAGE(pfc);
    BOOST_CHECK(contains(pfc, "# filter for arch x86_64"));
    BOOST_CHECK(contains(pfc, "# filter for arch x86 "));
    BOOST_CHECK(contains(pfc, "# filter for arch x32"));
    BOOST_CHECK(contains(pfc, "# filter for syscall \"clone3\" (435)"));
    BOOST_CHECK(contains(pfc, "action ERRNO(38);"));
    BOOST_CHECK(contains(pfc, "# filter for syscall \"landlock_create_ruleset\" (444)"));
    // MASKED_EQ: value is the mask, valueTwo the datum.
    BOOST_CHECK(contains(pfc, "if ($a0.lo32 & 0x7e020000 == 0)"));
    BOOST_CHECK(contains(pfc, "if ($a0.lo32 == 4294967295)"));
    // Different indexes: one rule with both conditions (a0 then a2 nested).
    BOOST_CHECK(contains(pfc, "if ($a0.lo32 == 16)"));
    BOOST_CHECK(contains(pfc, "if ($a2.lo32 == 9)"));
    BOOST_CHECK_EQUAL(p.ignored_syscalls().size(), 1u);

    // The ENOSYS stub covers x86_64 (both modes) and x86, and precedes libseccomp's program.
    BOOST_CHECK(!p.enosys_stub().empty());
    auto bpf = p.bpf();
    BOOST_CHECK_GT(bpf.size(), p.enosys_stub().size());
    BOOST_CHECK_LE(bpf.size(), size_t(BPF_MAXINSNS));
    BOOST_CHECK_EQUAL(bpf[0].code, BPF_LD | BPF_W | BPF_ABS);
    BOOST_CHECK_EQUAL(bpf[0].k, 4u);  // seccomp_data.arch
    bool has_enosys = false;
    for (const auto& insn : p.enosys_stub())
        has_enosys |= insn.code == (BPF_RET | BPF_K) && insn.k == SCMP_ACT_ERRNO(ENOSYS);
    BOOST_CHECK(has_enosys);

    // A permissive default needs no stub.
    BOOST_CHECK(SeccompProgram(profile("SCMP_ACT_ALLOW", {rule({"mkdir"}, "SCMP_ACT_ERRNO")}))
                    .enosys_stub()
                    .empty());
}

BOOST_AUTO_TEST_CASE(same_index_args_become_separate_rules) {
    auto s = profile("SCMP_ACT_ALLOW", {rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt,
                                             {arg(0, "SCMP_CMP_EQ", 8), arg(0, "SCMP_CMP_EQ", 9)})});
    // libseccomp refuses two comparisons of one arg in a single rule; runc splits them.
    const std::string pfc = SeccompProgram(s).pfc();
    BOOST_CHECK(contains(pfc, "if ($a0.lo32 == 8)"));
    BOOST_CHECK(contains(pfc, "if ($a0.lo32 == 9)"));
}

BOOST_AUTO_TEST_CASE(errno_rule_in_child) {
    const std::string dir = temp_dir();
    const std::string target = dir + "/d";
    auto s = profile("SCMP_ACT_ALLOW", {rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", 38)});
    SeccompProgram with_errno(s);
    s.syscalls[0].errno_ret.reset();
    SeccompProgram with_eperm(s);

    for (auto loader : {SeccompProgram::Loader::Raw, SeccompProgram::Loader::Libseccomp}) {
        BOOST_CHECK_EQUAL(run_filtered(with_errno, loader,
                                       [&] { return expect_errno(::mkdir(target.c_str(), 0700), 38); }),
                          0);
        BOOST_CHECK_EQUAL(run_filtered(with_eperm, loader,
                                       [&] { return expect_errno(::mkdir(target.c_str(), 0700), EPERM); }),
                          0);
    }
    BOOST_CHECK(::access(target.c_str(), F_OK) != 0);  // nothing was created
    // Control: without a filter the same call works.
    BOOST_CHECK_EQUAL(::mkdir(target.c_str(), 0700), 0);
    ::rmdir(target.c_str());
    ::rmdir(dir.c_str());
}

BOOST_AUTO_TEST_CASE(arg_operators_in_child) {
    auto s = profile(
        "SCMP_ACT_ERRNO",
        {rule(kChildBasics, "SCMP_ACT_ALLOW"),
         // Same index twice: OR (query with 0xffffffff, or a persona with low 16 bits 0).
         rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt,
              {arg(0, "SCMP_CMP_EQ", 0xffffffff), arg(0, "SCMP_CMP_MASKED_EQ", 0xffff, 0)}),
         // Different indexes: AND.
         rule({"getpriority"}, "SCMP_ACT_ALLOW", std::nullopt,
              {arg(0, "SCMP_CMP_EQ", 0), arg(1, "SCMP_CMP_LE", 0)}),
         rule({"sched_get_priority_max"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_GT", 1)}),
         rule({"sched_get_priority_min"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_LT", 1)}),
         rule({"alarm"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_NE", 5)}),
         rule({"getpgid"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_GE", 1)})});
    s.default_errno_ret = EACCES;
    SeccompProgram prog(s);
    int rc = run_filtered(prog, SeccompProgram::Loader::Raw, [] {
        if (::syscall(SYS_personality, 0xffffffffUL) < 0) return 1;
        if (::syscall(SYS_personality, 0UL) < 0) return 2;
        if (expect_errno(::syscall(SYS_personality, 8UL), EACCES)) return 3;
        if (expect_errno(::syscall(SYS_personality, 0xffff0008UL), EACCES)) return 4;
        if (::syscall(SYS_getpriority, 0, 0) < 0) return 5;
        long pid = ::syscall(SYS_getpid);
        if (expect_errno(::syscall(SYS_getpriority, 0, pid), EACCES)) return 6;
        if (expect_errno(::syscall(SYS_getpriority, 1, 0), EACCES)) return 7;
        if (::syscall(SYS_sched_get_priority_max, 2) < 0) return 8;
        if (expect_errno(::syscall(SYS_sched_get_priority_max, 1), EACCES)) return 9;
        if (::syscall(SYS_sched_get_priority_min, 0) < 0) return 11;
        if (expect_errno(::syscall(SYS_sched_get_priority_min, 2), EACCES)) return 12;
        if (::syscall(SYS_alarm, 0) < 0) return 13;
        if (expect_errno(::syscall(SYS_alarm, 5), EACCES)) return 14;
        if (::syscall(SYS_getpgid, pid) < 0) return 15;
        if (expect_errno(::syscall(SYS_getpgid, 0), EACCES)) return 16;
        // Not listed at all: the default action.
        if (expect_errno(::syscall(SYS_getppid), EACCES)) return 17;
        return 0;
    });
    BOOST_CHECK_EQUAL(rc, 0);
}

BOOST_AUTO_TEST_CASE(enosys_stub_in_child) {
    auto s = profile("SCMP_ACT_ERRNO", {rule(kChildBasics, "SCMP_ACT_ALLOW")});
    SeccompProgram prog(s);
    // Above the largest listed syscall (exit_group): ENOSYS, so libc can fall back.
    auto check = [](int above_max_errno) {
        return [above_max_errno] {
            if (::syscall(SYS_getpid) < 0) return 1;
            if (expect_errno(::syscall(SYS_getppid), EPERM)) return 2;  // listed below the max
            if (expect_errno(::syscall(1000), above_max_errno)) return 3;
            if (expect_errno(::syscall(SYS_getrandom, nullptr, 0, 0), above_max_errno)) return 4;
            return 0;
        };
    };
    BOOST_CHECK_EQUAL(run_filtered(prog, SeccompProgram::Loader::Raw, check(ENOSYS)), 0);
    // libseccomp's own loader has no stub: the default action applies everywhere.
    BOOST_CHECK_EQUAL(run_filtered(prog, SeccompProgram::Loader::Libseccomp, check(EPERM)), 0);
}

BOOST_AUTO_TEST_CASE(kill_action_in_child) {
    SeccompProgram prog(profile("SCMP_ACT_ALLOW", {rule({"getppid"}, "SCMP_ACT_KILL_PROCESS")}));
    int rc = run_filtered(prog, SeccompProgram::Loader::Raw, [] {
        ::syscall(SYS_getppid);
        return 0;
    });
    BOOST_CHECK_EQUAL(rc, 128 + SIGSYS);
}

BOOST_AUTO_TEST_CASE(notify_in_child) {
    auto s = profile("SCMP_ACT_ALLOW", {rule({"getppid"}, "SCMP_ACT_NOTIFY")});
    s.listener_path = "/unused.sock";
    s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
    SeccompProgram prog(s);
    BOOST_REQUIRE(prog.uses_notify());

    int sv[2];
    BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd parent_end(sv[0]), child_end(sv[1]);
    Child child(exiting_with([&] {
        parent_end.reset();
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 97;
        UniqueFd listener = prog.load();
        if (!listener) return 98;
        unix_socket::send_with_fd(child_end.get(), "listener", listener.get());
        listener.reset();
        if (expect_errno(::syscall(SYS_getppid), ENOMEDIUM)) return 1;
        if (::syscall(SYS_getppid) != 4242) return 2;
        return 0;
    }));
    child_end.reset();

    auto received = unix_socket::recv_with_fd(parent_end.get());
    BOOST_REQUIRE(received.fd.valid());
    const int replies[][2] = {{0, -ENOMEDIUM}, {4242, 0}};
    for (const auto& reply : replies) {
        pollfd pfd{received.fd.get(), POLLIN, 0};
        BOOST_REQUIRE_EQUAL(::poll(&pfd, 1, 5000), 1);
        seccomp_notif req;
        std::memset(&req, 0, sizeof req);
        BOOST_REQUIRE_EQUAL(::ioctl(received.fd.get(), SECCOMP_IOCTL_NOTIF_RECV, &req), 0);
        BOOST_CHECK_EQUAL(req.data.nr, SYS_getppid);
        BOOST_CHECK_EQUAL(static_cast<pid_t>(req.pid), child.pid());
        seccomp_notif_resp resp;
        std::memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.val = reply[0];
        resp.error = reply[1];
        BOOST_REQUIRE_EQUAL(::ioctl(received.fd.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp), 0);
    }
    BOOST_CHECK_EQUAL(child.wait(), 0);
}

BOOST_AUTO_TEST_CASE(install_bpf_raw) {
    // The egress layer's path: any libseccomp context, exported and installed by us.
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    BOOST_REQUIRE(ctx);
    BOOST_REQUIRE_EQUAL(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EXDEV), SCMP_SYS(getppid), 0), 0);
    std::vector<sock_filter> prog = os::export_bpf(ctx);
    seccomp_release(ctx);
    BOOST_REQUIRE(!prog.empty());
    Child child(exiting_with([&] {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 97;
        UniqueFd none = os::install_bpf(prog, 0);
        if (none.valid()) return 1;
        return expect_errno(::syscall(SYS_getppid), EXDEV);
    }));
    BOOST_CHECK_EQUAL(child.wait(), 0);
    BOOST_CHECK_THROW(os::install_bpf({}, 0), Error);
}

BOOST_AUTO_TEST_CASE(container_process_state_layout) {
    nlohmann::json state = {{"ociVersion", "1.2.0"}, {"id", "c1"},       {"status", "created"},
                            {"pid", 1234},           {"bundle", "/b"},   {"annotations", {{"a", "b"}}},
                            {"created", "2024"},     {"owner", "root"}};
    auto j = os::container_process_state(state, 1234, "meta=1");
    BOOST_CHECK_EQUAL(j["ociVersion"], spec::kOciVersion);
    BOOST_CHECK_EQUAL(j["fds"], nlohmann::json::array({"seccompFd"}));
    BOOST_CHECK_EQUAL(j["pid"], 1234);
    BOOST_CHECK_EQUAL(j["metadata"], "meta=1");
    BOOST_CHECK_EQUAL(j["state"]["id"], "c1");
    BOOST_CHECK_EQUAL(j["state"]["bundle"], "/b");
    BOOST_CHECK_EQUAL(j["state"]["annotations"]["a"], "b");
    BOOST_CHECK(!j["state"].contains("created"));  // only OCI state fields
    BOOST_CHECK(!j["state"].contains("owner"));

    auto bare = os::container_process_state({{"id", "c2"}, {"pid", 0}, {"annotations", nlohmann::json::object()}}, 5, "");
    BOOST_CHECK(!bare.contains("metadata"));
    BOOST_CHECK(!bare["state"].contains("pid"));
    BOOST_CHECK(!bare["state"].contains("annotations"));
}

BOOST_AUTO_TEST_CASE(send_listener_fd_protocol) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/agent.sock";
    UniqueFd server(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(server.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    BOOST_REQUIRE_EQUAL(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    BOOST_REQUIRE_EQUAL(::listen(server.get(), 1), 0);

    int p[2];
    BOOST_REQUIRE_EQUAL(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd rd(p[0]), wr(p[1]);
    const std::string payload =
        os::container_process_state({{"id", "c1"}, {"status", "running"}}, 42, "m").dump();
    os::send_listener_fd(path, payload, wr.get());

    UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(conn.valid());
    auto got = unix_socket::recv_with_fd(conn.get(), 65536);
    BOOST_CHECK_EQUAL(got.payload, payload);
    BOOST_REQUIRE(got.fd.valid());
    // The received fd is the pipe's write end.
    BOOST_REQUIRE_EQUAL(::write(got.fd.get(), "x", 1), 1);
    char c = 0;
    BOOST_CHECK_EQUAL(::read(rd.get(), &c, 1), 1);
    BOOST_CHECK_EQUAL(c, 'x');

    try {
        os::send_listener_fd(dir + "/missing.sock", payload, wr.get());
        BOOST_ERROR("expected an error");
    } catch (const Error& e) {
        BOOST_CHECK_EQUAL(std::string(e.what()),
                          "failed to connect with seccomp agent specified in the seccomp profile: "
                          "connect " + dir + "/missing.sock: No such file or directory");
    }
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
}

BOOST_AUTO_TEST_SUITE_END()

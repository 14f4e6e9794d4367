// Process identity: validation here, and the real thing in forked children (needs root).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "runtime/linux/identity.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "tests/support.hpp"
#include "runtime/util/fs.hpp"

namespace identity {
using namespace sandlock;

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Runs fn in a forked child and returns what it reported: its result string, or the
// message of the exception it threw. The identity changes never reach the test process.
std::string in_child(const std::function<std::string()>& fn) {
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    UniqueFd r(fds[0]), w(fds[1]);
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        r.reset();
        std::string out;
        try {
            out = fn();
        } catch (const std::exception& e) {
            out = std::string("exception: ") + e.what();
        }
        size_t off = 0;
        while (off < out.size()) {
            ssize_t n = ::write(w.get(), out.data() + off, out.size() - off);
            if (n <= 0) ::_exit(2);
            off += static_cast<size_t>(n);
        }
        ::_exit(0);
    }
    w.reset();
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(r.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(pid, &status, 0);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    return out;
}

// The status lines that describe identity, "Key:\tvalue" with runs of whitespace as one space.
std::string status_lines(std::initializer_list<const char*> keys) {
    std::istringstream in(fs::read_file("/proc/self/status"));
    std::string line, out;
    while (std::getline(in, line)) {
        for (const char* key : keys) {
            std::string prefix = std::string(key) + ":";
            if (line.compare(0, prefix.size(), prefix) != 0) continue;
            std::istringstream words(line.substr(prefix.size()));
            std::string word, value;
            while (words >> word) value += (value.empty() ? "" : " ") + word;
            out += std::string(key) + "=" + value + "\n";
        }
    }
    return out;
}

std::string identity_status() {
    return status_lines({"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"});
}

spec::Process user_process(uint32_t uid, uint32_t gid, std::vector<uint32_t> groups = {}) {
    spec::Process p;
    p.user.uid = uid;
    p.user.gid = gid;
    p.user.additional_gids = std::move(groups);
    return p;
}

spec::Capabilities same_in_every_set(const std::vector<std::string>& names) {
    return spec::Capabilities{names, names, names, names, names};
}

}  // namespace identity

BOOST_AUTO_TEST_SUITE(identity)

BOOST_AUTO_TEST_CASE(capability_names_are_validated_with_their_path) {
    spec::Capabilities caps;
    caps.bounding = {"CAP_KILL", "CAP_CHECKPOINT_RESTORE"};
    caps.effective = {"CAP_NET_BIND_SERVICE", "CAP_FOO"};
    BOOST_TEST(error_of([&] { os::validate_capabilities(caps, ".process.capabilities"); }) ==
               ".process.capabilities.effective[1]: unknown capability \"CAP_FOO\"");
    caps.effective = {"cap_kill"};
    BOOST_TEST(error_of([&] { os::validate_capabilities(caps, ".process.capabilities"); }) ==
               ".process.capabilities.effective[0]: unknown capability \"cap_kill\"");
    caps.effective = {};
    caps.ambient = {"41"};
    BOOST_TEST(error_of([&] { os::validate_capabilities(caps, ".process.capabilities"); }) ==
               ".process.capabilities.ambient[0]: unknown capability \"41\"");
    caps.ambient = {"CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"};
    BOOST_TEST(error_of([&] { os::validate_capabilities(caps, ".process.capabilities"); }) == "");
    BOOST_TEST(os::unavailable_capabilities(caps).empty());
}

BOOST_AUTO_TEST_CASE(rlimits_are_validated_with_their_path) {
    std::vector<spec::Rlimit> rl = {{"RLIMIT_NOFILE", 1024, 1024}, {"RLIMIT_FOO", 1, 1}};
    BOOST_TEST(error_of([&] { os::validate_rlimits(rl, ".process.rlimits"); }) ==
               ".process.rlimits[1].type: unknown rlimit \"RLIMIT_FOO\"");
    rl[1] = {"RLIMIT_NOFILE", 10, 10};
    BOOST_TEST(error_of([&] { os::validate_rlimits(rl, ".process.rlimits"); }) ==
               ".process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\"");
    rl[1] = {"RLIMIT_CORE", 100, 200};  // hard 100, soft 200
    BOOST_TEST(error_of([&] { os::validate_rlimits(rl, ".process.rlimits"); }) ==
               ".process.rlimits[1]: soft limit 200 is greater than hard limit 100");
    rl[1] = {"RLIMIT_CORE", UINT64_MAX, 0};
    BOOST_TEST(error_of([&] { os::validate_rlimits(rl, ".process.rlimits"); }) == "");
}

BOOST_AUTO_TEST_CASE(sysctl_keys_are_validated) {
    for (const char* bad : {"net/ipv4/ip_forward", "kernel..msgmax", "../kernel", "", ".kernel", "kernel."}) {
        BOOST_TEST(error_of([&] { os::validate_sysctl_key(bad); }) ==
                   "sysctl \"" + std::string(bad) + "\": invalid key");
    }
    BOOST_TEST(error_of([] { os::validate_sysctl_key("net.ipv4.ip_forward"); }) == "");
    BOOST_TEST(error_of([] { os::apply_sysctl({{"kernel/../x", "1"}}); }) ==
               "sysctl \"kernel/../x\": invalid key");
}

BOOST_AUTO_TEST_CASE(finalize_identity_non_root_with_one_capability_everywhere, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        spec::Process p = user_process(1000, 1000, {10, 20});
        p.capabilities = same_in_every_set({"CAP_NET_BIND_SERVICE"});
        os::finalize_identity(p);
        return identity_status();
    });
    BOOST_TEST(got ==
               "Uid=1000 1000 1000 1000\n"
               "Gid=1000 1000 1000 1000\n"
               "Groups=10 20\n"
               "CapInh=0000000000000400\n"
               "CapPrm=0000000000000400\n"
               "CapEff=0000000000000400\n"
               "CapBnd=0000000000000400\n"
               "CapAmb=0000000000000400\n");
}

BOOST_AUTO_TEST_CASE(no_capabilities_object_drops_everything, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        os::finalize_identity(user_process(1000, 1000));
        return identity_status();
    });
    BOOST_TEST(got ==
               "Uid=1000 1000 1000 1000\n"
               "Gid=1000 1000 1000 1000\n"
               "Groups=\n"
               "CapInh=0000000000000000\n"
               "CapPrm=0000000000000000\n"
               "CapEff=0000000000000000\n"
               "CapBnd=0000000000000000\n"
               "CapAmb=0000000000000000\n");
}

BOOST_AUTO_TEST_CASE(sets_are_independent_and_impossible_ambient_is_skipped, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        spec::Process p = user_process(0, 0);
        spec::Capabilities caps;
        caps.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"};
        caps.permitted = {"CAP_KILL", "CAP_CHOWN"};
        caps.effective = {"CAP_KILL"};
        caps.inheritable = {"CAP_CHOWN"};
        caps.ambient = {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"};  // the second is not permitted
        p.capabilities = caps;
        p.user.umask = 027;
        os::finalize_identity(p);
        mode_t old = ::umask(0);
        return status_lines({"Uid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) +
               "umask=" + std::to_string(old) + "\n";
    });
    BOOST_TEST(got ==
               "Uid=0 0 0 0\n"
               "CapInh=0000000000000001\n"
               "CapPrm=0000000000000021\n"
               "CapEff=0000000000000020\n"
               "CapBnd=0000000000000421\n"
               "CapAmb=0000000000000001\n"
               "umask=23\n");
}

BOOST_AUTO_TEST_CASE(effective_outside_permitted_fails_like_runc, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        spec::Process p = user_process(1000, 1000);
        spec::Capabilities caps;
        caps.permitted = {"CAP_NET_BIND_SERVICE"};
        caps.effective = {"CAP_KILL"};
        p.capabilities = caps;
        os::finalize_identity(p);
        return std::string("no error");
    });
    BOOST_TEST(got == "exception: unable to apply caps: Operation not permitted");
}

BOOST_AUTO_TEST_CASE(rlimits_are_applied_and_errors_name_the_limit, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        os::apply_rlimits({{"RLIMIT_NOFILE", 200, 100}, {"RLIMIT_CORE", UINT64_MAX, 0}});
        struct rlimit nofile {}, core {};
        ::getrlimit(RLIMIT_NOFILE, &nofile);
        ::getrlimit(RLIMIT_CORE, &core);
        std::string out = std::to_string(nofile.rlim_cur) + "/" + std::to_string(nofile.rlim_max) +
                          " core " + std::to_string(core.rlim_cur) + "/" +
                          (core.rlim_max == RLIM_INFINITY ? "inf" : std::to_string(core.rlim_max));
        // Without CAP_SYS_RESOURCE a hard limit cannot be raised.
        os::finalize_identity(user_process(1000, 1000));
        out += "; " + error_of([] { os::apply_rlimits({{"RLIMIT_NOFILE", 300, 100}}); });
        return out;
    });
    BOOST_TEST(got == "100/200 core 0/inf; setrlimit RLIMIT_NOFILE: Operation not permitted");
}

BOOST_AUTO_TEST_CASE(personality_is_applied) {
    std::string got = in_child([] {
        os::apply_personality(spec::Personality{"LINUX32", {}});
        struct utsname u {};
        ::uname(&u);
        std::string out = std::to_string(::personality(0xffffffff) & PER_MASK) + " " + u.machine;
        os::apply_personality(spec::Personality{"LINUX", {}});
        out += " " + std::to_string(::personality(0xffffffff) & PER_MASK);
        out += "; " + error_of([] { os::apply_personality(spec::Personality{"BSD", {}}); });
        return out;
    });
#if defined(__x86_64__)
    BOOST_TEST(got == "8 i686 0; unknown personality domain \"BSD\"");
#else
    BOOST_TEST(got.rfind("8 ", 0) == 0);
#endif
}

BOOST_AUTO_TEST_CASE(sysctl_hostname_and_domainname_in_private_namespaces, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    std::string got = in_child([] {
        if (::unshare(CLONE_NEWIPC | CLONE_NEWUTS) != 0) throw_errno("unshare");
        os::apply_sysctl({{"kernel.msgmax", "12345"}});
        os::set_hostname("sandlock-test");
        os::set_domainname("example.test");
        char host[256] = {}, domain[256] = {};
        ::gethostname(host, sizeof host - 1);
        ::getdomainname(domain, sizeof domain - 1);
        return fs::read_file("/proc/sys/kernel/msgmax") + host + " " + domain + "; " +
               error_of([] { os::apply_sysctl({{"kernel.no_such_knob", "1"}}); });
    });
    BOOST_TEST(got ==
               "12345\nsandlock-test example.test; sysctl kernel.no_such_knob: open "
               "/proc/sys/kernel/no_such_knob: No such file or directory");
}

BOOST_AUTO_TEST_CASE(oom_score_adj_and_no_new_privileges) {
    std::string got = in_child([] {
        os::apply_oom_score_adj(std::nullopt);
        std::string before = fs::read_file("/proc/self/oom_score_adj");
        os::apply_oom_score_adj(500);
        os::set_no_new_privileges();
        return before + fs::read_file("/proc/self/oom_score_adj") + status_lines({"NoNewPrivs"});
    });
    std::string parent = fs::read_file("/proc/self/oom_score_adj");
    BOOST_TEST(got == parent + "500\nNoNewPrivs=1\n");
}

BOOST_AUTO_TEST_SUITE_END()

// OCI hooks runner: real /bin/sh hooks written into a temporary directory.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hooks/hooks.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace hooks_runner {
using namespace sandlock;

struct HookDir {
    std::string path;
    HookDir() {
        char tmpl[] = "/tmp/sandlock-hooks-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~HookDir() { fs::remove_all(path); }

    std::string file(const std::string& name) const { return path + "/" + name; }

    // Writes an executable /bin/sh script; "$D" in the body is this directory.
    std::string script(const std::string& name, const std::string& body) const {
        std::string p = file(name);
        fs::write_file_atomic(p, "#!/bin/sh\nD='" + path + "'\n" + body + "\n", 0755);
        return p;
    }
};

spec::Hook hook_at(const std::string& path, std::optional<int> timeout = std::nullopt) {
    spec::Hook h;
    h.path = path;
    h.timeout = timeout;
    return h;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Live (not zombie) processes whose process group is pgid.
std::vector<pid_t> live_members_of_group(pid_t pgid) {
    std::vector<pid_t> members;
    DIR* d = ::opendir("/proc");
    BOOST_REQUIRE(d != nullptr);
    while (dirent* e = ::readdir(d)) {
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        std::string stat;
        try {
            stat = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
        } catch (const Error&) {
            continue;  // exited meanwhile
        }
        // Fields after the last ')': state ppid pgrp ...
        auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0, pgrp = 0;
        if (std::sscanf(stat.c_str() + close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
        if (pgrp == pgid && state != 'Z') members.push_back(pid);
    }
    ::closedir(d);
    return members;
}

std::string current_dir() {
    char buf[4096];
    BOOST_REQUIRE(::getcwd(buf, sizeof buf) != nullptr);
    return buf;
}

bool sigpipe_blocked() {
    sigset_t mask;
    ::sigprocmask(SIG_SETMASK, nullptr, &mask);
    return sigismember(&mask, SIGPIPE) == 1;
}

}  // namespace hooks_runner

BOOST_AUTO_TEST_SUITE(hooks_runner)

BOOST_AUTO_TEST_CASE(state_arrives_on_stdin) {
    HookDir dir;
    auto h = hook_at(dir.script("h", "cat > \"$D/stdin\""));
    std::string state = R"({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42})";
    hooks::run_hook(h, state);
    BOOST_TEST(fs::read_file(dir.file("stdin")) == state);
}

BOOST_AUTO_TEST_CASE(args_and_env_are_passed_exactly) {
    HookDir dir;
    std::string body = dir.script("body", "tr '\\0' '\\n' < /proc/$$/cmdline > \"$D/argv\"; env | sort > \"$D/env\"");
    spec::Hook h = hook_at("/bin/sh");
    h.args = {"custom-argv0", body, "a", "b c"};
    h.env = {"FOO=bar", "X=y z"};
    hooks::run_hook(h, "{}");
    BOOST_TEST(fs::read_file(dir.file("argv")) == "custom-argv0\n" + body + "\na\nb c\n");
    // dash adds only PWD; nothing of the runtime's own environment may leak in.
    BOOST_TEST(fs::read_file(dir.file("env")) == "FOO=bar\nPWD=" + current_dir() + "\nX=y z\n");
}

BOOST_AUTO_TEST_CASE(empty_args_means_argv_is_path) {
    HookDir dir;
    // /bin/sh without arguments runs its stdin: the state doubles as the script.
    std::string state = "tr '\\0' '\\n' < /proc/$$/cmdline > '" + dir.file("argv") + "'\n";
    hooks::run_hook(hook_at("/bin/sh"), state);
    BOOST_TEST(fs::read_file(dir.file("argv")) == "/bin/sh\n");
}

BOOST_AUTO_TEST_CASE(hooks_run_in_order) {
    HookDir dir;
    std::vector<spec::Hook> list;
    for (int i = 1; i <= 3; ++i)
        list.push_back(hook_at(dir.script("h" + std::to_string(i), "echo " + std::to_string(i) + " >> \"$D/order\"")));
    hooks::run_hooks(list, "{}", "createRuntime");
    BOOST_TEST(fs::read_file(dir.file("order")) == "1\n2\n3\n");
}

BOOST_AUTO_TEST_CASE(failure_stops_the_list_and_quotes_output) {
    HookDir dir;
    std::vector<spec::Hook> list = {
        hook_at(dir.script("ok", "true")),
        hook_at(dir.script("bad", "echo out-text; echo err-text >&2; exit 3")),
        hook_at(dir.script("never", "touch \"$D/ran\"")),
    };
    BOOST_TEST(error_of([&] { hooks::run_hooks(list, "{}", "createRuntime"); }) ==
               "error running createRuntime hook #1: error running hook: exit status 3, "
               "stdout: out-text, stderr: err-text");
    BOOST_TEST(!fs::exists(dir.file("ran")));
}

BOOST_AUTO_TEST_CASE(killed_hook_reports_signal) {
    HookDir dir;
    auto h = hook_at(dir.script("h", "kill -KILL $$"));
    BOOST_TEST(error_of([&] { hooks::run_hook(h, "{}"); }) ==
               "error running hook: signal: killed, stdout: , stderr: ");
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_hook_and_its_children) {
    HookDir dir;
    // sh forks sleep (no exec): the child must die with the hook.
    auto h = hook_at(dir.script("slow", "echo $$ > \"$D/pid\"; sleep 30; echo not-reached"), 1);
    auto start = std::chrono::steady_clock::now();
    std::string err = error_of([&] { hooks::run_hooks({h}, "{}", "createContainer"); });
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(err == "error running createContainer hook #0: hook ran past specified timeout of 1.0s");
    BOOST_TEST(elapsed >= 0.9);
    BOOST_TEST(elapsed < 5.0);

    pid_t pgid = std::stoi(fs::read_file(dir.file("pid")));
    BOOST_REQUIRE(pgid > 1);
    std::vector<pid_t> left;
    for (int i = 0; i < 100; ++i) {  // the orphaned sleep is reaped by init asynchronously
        left = live_members_of_group(pgid);
        if (left.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_TEST(left.empty());
}

BOOST_AUTO_TEST_CASE(hook_that_finishes_in_time_passes) {
    HookDir dir;
    auto h = hook_at(dir.script("quick", "touch \"$D/done\""), 5);
    hooks::run_hook(h, "{}");
    BOOST_TEST(fs::exists(dir.file("done")));
}

BOOST_AUTO_TEST_CASE(missing_and_non_executable_hooks) {
    HookDir dir;
    BOOST_TEST(error_of([&] { hooks::run_hooks({hook_at(dir.file("nope"))}, "{}", "poststop"); }) ==
               "error running poststop hook #0: fork/exec " + dir.file("nope") +
                   ": No such file or directory");
    fs::write_file_atomic(dir.file("plain"), "#!/bin/sh\n", 0644);
    BOOST_TEST(error_of([&] { hooks::run_hook(hook_at(dir.file("plain")), "{}"); }) ==
               "fork/exec " + dir.file("plain") + ": Permission denied");
}

BOOST_AUTO_TEST_CASE(hook_ignoring_a_large_state_is_fine) {
    HookDir dir;
    // Far more than a pipe holds: the write hits EPIPE, which must neither fail the hook
    // nor leave a SIGPIPE behind (that would kill this test program).
    std::string state(4 * 1024 * 1024, 'x');
    BOOST_REQUIRE(!sigpipe_blocked());
    hooks::run_hook(hook_at(dir.script("deaf", "exit 0")), state);
    BOOST_TEST(!sigpipe_blocked());
    sigset_t pending;
    ::sigpending(&pending);
    BOOST_TEST(sigismember(&pending, SIGPIPE) == 0);
}

BOOST_AUTO_TEST_CASE(background_child_holding_stdout_does_not_hang) {
    HookDir dir;
    auto h = hook_at(dir.script("daemon", "sleep 30 & echo $! > \"$D/bg\"; echo started"));
    auto start = std::chrono::steady_clock::now();
    hooks::run_hook(h, "{}");
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ::kill(std::stoi(fs::read_file(dir.file("bg"))), SIGKILL);
    BOOST_TEST(elapsed < 5.0);
}

BOOST_AUTO_TEST_CASE(warn_variant_runs_everything) {
    HookDir dir;
    std::vector<spec::Hook> list = {
        hook_at(dir.script("bad1", "echo one >&2; exit 1")),
        hook_at(dir.script("ok", "touch \"$D/ok\"")),
        hook_at(dir.file("missing")),
    };
    auto warnings = hooks::run_hooks_warn(list, "{}", "poststart");
    BOOST_REQUIRE(warnings.size() == 2u);
    BOOST_TEST(warnings[0] ==
               "error running poststart hook #0: error running hook: exit status 1, stdout: , stderr: one");
    BOOST_TEST(warnings[1] == "error running poststart hook #2: fork/exec " + dir.file("missing") +
                                  ": No such file or directory");
    BOOST_TEST(fs::exists(dir.file("ok")));
}

BOOST_AUTO_TEST_SUITE_END()

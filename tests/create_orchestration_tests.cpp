// create's and exec's orchestration, without root: create_container and exec_in_container
// run against a state dir in a temp dir and the fake kernel (tests/fake_kernel.hpp), whose
// scripted child speaks the sync protocol over the real socket. The steps in order, then
// a failure at each step and the undo that follows: state dir removed, cgroup destroyed,
// stage 1 and init killed and reaped, no pid file -- nothing left behind. The bundles have
// no egress policy, so the egress owner does nothing (its own undo is egress's tests').
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/container/create.hpp"
#include "runtime/container/exec.hpp"
#include "runtime/container/state.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "tests/fake_kernel.hpp"
#include "tests/support.hpp"

namespace create_orchestration_tests {
using namespace sandlock;
using namespace sandlock::container;
using sandlock::testing::FakeKernel;
using sandlock::testing::kFakeInit;
namespace step = sandlock::testing::child;

constexpr pid_t kFakeExecProcess = 5000003;

// A bundle (busybox-like config, an empty rootfs), a state root, and the hooks' log.
struct Bundle {
    testing::TempDir tmp{"sandlock-create-orchestration"};
    StateStore store{tmp.path + "/state"};
    std::string dir = tmp.path + "/bundle";
    std::string hooks_log = tmp.path + "/hooks.log";
    std::string pid_file = tmp.path + "/pid";
    nlohmann::json config = {
        {"ociVersion", "1.0.2"},
        {"process",
         {{"terminal", false}, {"user", {{"uid", 0}, {"gid", 0}}}, {"args", {"sh"}}, {"cwd", "/"},
          {"env", {"PATH=/bin"}}}},
        {"root", {{"path", "rootfs"}}},
        {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "ipc"}}, {{"type", "uts"}}}}}},
    };

    Bundle() {
        fs::mkdir_p(dir + "/rootfs", 0755);
        // Each hook appends its name: which ran, in which order.
        for (const char* name : {"prestart", "createRuntime", "poststop"}) add_hook(name, "true");
    }

    // `command` decides the hook's outcome ("true", "false").
    void add_hook(const std::string& name, const std::string& command) {
        nlohmann::json hook = {{"path", "/bin/sh"},
                               {"args", {"sh", "-c", "echo " + name + " >> " + hooks_log + "; " + command}}};
        auto& list = config["hooks"][name];
        list = nlohmann::json::array({hook});
    }

    void with_user_and_cgroup_namespaces() {
        auto& ns = config["linux"]["namespaces"];
        ns.push_back({{"type", "user"}});
        ns.push_back({{"type", "cgroup"}});
        nlohmann::json map = nlohmann::json::array({{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}});
        config["linux"]["uidMappings"] = map;
        config["linux"]["gidMappings"] = map;
    }

    CreateOptions options() const {
        CreateOptions o;
        o.id = "c1";
        o.bundle = dir;
        o.pid_file = pid_file;
        return o;
    }

    CreateResult create(FakeKernel& kernel, const CreateOptions& o) {
        fs::write_file_atomic(dir + "/config.json", config.dump(), 0644);
        return create_container(store, o, kernel);
    }
    CreateResult create(FakeKernel& kernel) { return create(kernel, options()); }

    // The message create failed with ("" if it did not).
    std::string create_fails(FakeKernel& kernel, const CreateOptions& o) {
        return testing::message_of([&] { create(kernel, o); });
    }
    std::string create_fails(FakeKernel& kernel) { return create_fails(kernel, options()); }

    std::string hooks_run() const {
        if (!fs::exists(hooks_log)) return "";
        std::string text = fs::read_file(hooks_log);
        std::replace(text.begin(), text.end(), '\n', ' ');
        return text;
    }
};

// The conversation of a create without a user or cgroup namespace, as stage 1 and init hold it.
std::vector<testing::ChildStep> plain_create() {
    return {step::send(msg::JoinCgroup{}), step::expect(SyncType::CgroupJoined), step::fork_init(),
            step::send(msg::RunHooks{}),   step::expect(SyncType::HooksDone),    step::send(msg::Ready{})};
}

// The first n steps of plain_create, then `more`.
std::vector<testing::ChildStep> plain_create_until(size_t n, std::vector<testing::ChildStep> more) {
    std::vector<testing::ChildStep> script = plain_create();
    script.resize(n);
    script.insert(script.end(), more.begin(), more.end());
    return script;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& l : lines) all += (all.empty() ? "" : " | ") + l;
    return all;
}

// The events after the last `marker`, joined: the undo that followed a failure there.
std::string after(const std::vector<std::string>& events, const std::string& marker) {
    auto it = std::find(events.rbegin(), events.rend(), marker);
    if (it == events.rend()) return "<no " + marker + " in: " + joined(events) + ">";
    return joined(std::vector<std::string>(it.base(), events.end()));
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Everything create made is gone again.
void check_nothing_left(const Bundle& b, FakeKernel& kernel) {
    BOOST_TEST(!fs::exists(b.store.dir("c1")), "state dir left");
    BOOST_TEST(joined(kernel.leftovers()) == "");
    BOOST_TEST(joined(kernel.cgroups_left()) == "");
    BOOST_TEST(!fs::exists(b.pid_file), "pid file left");
}

}  // namespace create_orchestration_tests

BOOST_AUTO_TEST_SUITE(create_orchestration)
using namespace create_orchestration_tests;

BOOST_AUTO_TEST_CASE(create_runs_its_steps_in_order_and_leaves_init_parked) {
    Bundle b;
    FakeKernel kernel(plain_create());
    CreateResult r = b.create(kernel);

    BOOST_TEST(joined(kernel.events()) ==
               "probe cgroups | cgroup manager c1 | cgroup create | make fifo | start stage1 | "
               "cgroup apply | child got CgroupJoined | wait stage1 | start time init | "
               "child got HooksDone | cgroup add init");
    BOOST_TEST(kernel.child_error() == "");
    BOOST_TEST(b.hooks_run() == "prestart createRuntime ");
    // Stage 1 reaped, init parked before execve, the cgroup kept: the container exists.
    BOOST_TEST(joined(kernel.leftovers()) == "init running");
    BOOST_TEST(joined(kernel.cgroups_left()) == "c1");
    const ContainerState saved = b.store.load("c1");
    BOOST_TEST(saved.pid == kFakeInit);
    BOOST_TEST(saved.init_start_time == testing::kFakeStartTime);
    BOOST_TEST(saved.cgroup == FakeKernel::cgroup_record("c1"));
    BOOST_TEST(r.state.pid == kFakeInit);
    BOOST_TEST(fs::read_file(b.pid_file) == std::to_string(kFakeInit));
    BOOST_TEST(fs::exists(b.store.fifo_path("c1")));
}

BOOST_AUTO_TEST_CASE(a_user_namespace_is_mapped_and_stage1_visits_the_cgroup_for_its_namespace) {
    Bundle b;
    b.with_user_and_cgroup_namespaces();
    FakeKernel kernel({step::send(msg::UsernsReady{}), step::expect(SyncType::UsernsMapped),
                       step::send(msg::JoinCgroup{.makes_cgroup_ns = true}), step::expect(SyncType::CgroupJoined),
                       step::send(msg::LeaveCgroup{}), step::expect(SyncType::CgroupLeft), step::fork_init(),
                       step::send(msg::RunHooks{}), step::expect(SyncType::HooksDone), step::send(msg::Ready{})});
    b.create(kernel);
    BOOST_TEST(joined(kernel.events()) ==
               "probe cgroups | cgroup manager c1 | cgroup create | make fifo | start stage1 | "
               "write id maps stage1 | child got UsernsMapped | "
               "cgroup add stage1 | cgroup apply | child got CgroupJoined | cgroup leave stage1 | child got CgroupLeft | "
               "wait stage1 | start time init | child got HooksDone | cgroup add init");
    BOOST_TEST(kernel.child_error() == "");
    BOOST_TEST(joined(kernel.leftovers()) == "init running");
}

// Before stage 1: nothing to kill; the cgroup (once made) and the state dir are undone.
BOOST_AUTO_TEST_CASE(failures_before_stage1_undo_the_cgroup_and_the_state_dir) {
    struct Case {
        std::string fail;
        std::string undo;  // the events after the failed one
    };
    const std::vector<Case> cases = {
        {"probe cgroups", ""},
        // A manager that fails to make its cgroup removes what it made itself.
        {"cgroup create", ""},
        {"make fifo", "cgroup destroy"},
        {"start stage1", "cgroup destroy"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.fail) {
            Bundle b;
            FakeKernel kernel(plain_create());
            kernel.fail(c.fail);
            BOOST_TEST(b.create_fails(kernel) == "fake " + c.fail + ": Input/output error");
            BOOST_TEST(after(kernel.events(), c.fail) == c.undo);
            const bool started = contains(joined(kernel.events()), "start stage1");
            BOOST_TEST(started == (c.fail == "start stage1"));
            check_nothing_left(b, kernel);
            BOOST_TEST(b.hooks_run() == "");
        }
    }
}

// Stage 1 is running and init not yet known: stage 1 is killed and reaped, then the cgroup goes.
BOOST_AUTO_TEST_CASE(failures_in_stage1s_steps_kill_and_reap_stage1) {
    struct Case {
        std::string name;
        std::vector<testing::ChildStep> script;
        std::string fail;
        std::string error;
        std::string last;  // the event the undo follows
        bool user_ns = false;
    };
    const std::vector<Case> cases = {
        {"id maps not written",
         {step::send(msg::UsernsReady{}), step::expect(SyncType::UsernsMapped)},
         "write id maps stage1", "fake write id maps stage1: Input/output error", "write id maps stage1", true},
        {"resources not applied", plain_create(), "cgroup apply", "fake cgroup apply: Input/output error",
         "cgroup apply"},
        {"stage 1 not taken back out of the cgroup",
         {step::send(msg::JoinCgroup{.makes_cgroup_ns = true}), step::expect(SyncType::CgroupJoined),
          step::send(msg::LeaveCgroup{}), step::expect(SyncType::CgroupLeft)},
         "cgroup leave stage1", "fake cgroup leave stage1: Input/output error", "cgroup leave stage1"},
        {"a malformed message", plain_create_until(2, {step::send_raw(std::string(1, '\x08') + "12x")}), "",
         "sync: malformed InitPid message", "child got CgroupJoined"},
        {"a message out of order", plain_create_until(2, {step::send(msg::RunHooks{})}), "",
         "sync: expected InitPid, got RunHooks", "child got CgroupJoined"},
        {"a required message skipped", {step::send(msg::RunHooks{})}, "", "sync: expected JoinCgroup, got RunHooks",
         "start stage1"},
        {"the user namespace not announced", plain_create(), "", "sync: expected UsernsReady, got JoinCgroup",
         "start stage1", true},
        {"stage 1 fails", plain_create_until(2, {step::send(msg::Error{"setns pid: Operation not permitted"})}), "",
         "setns pid: Operation not permitted", "child got CgroupJoined"},
        {"stage 1 dies", plain_create_until(2, {step::hang_up()}), "", "container init exited unexpectedly",
         "child got CgroupJoined"},
        // create's reply meets a closed socket (SEQPACKET: EPIPE, no SIGPIPE) or the next
        // read its end: either way the undo runs
        {"stage 1 dies while owed a reply", {step::send(msg::UsernsReady{}), step::hang_up()}, "", "",
         "write id maps stage1", true},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            Bundle b;
            if (c.user_ns) b.with_user_and_cgroup_namespaces();
            FakeKernel kernel(c.script);
            if (!c.fail.empty()) kernel.fail(c.fail);
            const std::string error = b.create_fails(kernel);
            BOOST_TEST(contains(error, c.error), error);
            BOOST_TEST(after(kernel.events(), c.last) == "kill stage1 | wait stage1 | cgroup destroy");
            check_nothing_left(b, kernel);
            // init was never recorded: no poststop hooks.
            BOOST_TEST(b.hooks_run() == "");
        }
    }
}

// init is recorded: it is killed (and waited for: stage 1 was reaped already), the
// poststop hooks run, then the cgroup and the state dir go.
BOOST_AUTO_TEST_CASE(failures_once_init_is_recorded_kill_init_and_run_poststop) {
    struct Case {
        std::string name;
        std::vector<testing::ChildStep> script;
        std::string fail;
        std::string error;
        std::string last;
        std::string hooks;
        bool bad_pid_file = false;
    };
    const std::vector<Case> cases = {
        {"init fails", plain_create_until(3, {step::send(msg::Error{"mount proc: Permission denied"})}), "",
         "mount proc: Permission denied", "start time init", "poststop "},
        {"init dies", plain_create_until(5, {step::hang_up()}), "", "container init exited unexpectedly",
         "child got HooksDone", "prestart createRuntime poststop "},
        {"a message out of order", plain_create_until(3, {step::send(msg::JoinCgroup{})}), "",
         "sync: expected RunHooks, got JoinCgroup", "start time init", "poststop "},
        {"init not added to its cgroup", plain_create(), "cgroup add init", "fake cgroup add init: Input/output error",
         "cgroup add init", "prestart createRuntime poststop "},
        {"the pid file not written", plain_create(), "", "", "cgroup add init", "prestart createRuntime ", true},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            Bundle b;
            FakeKernel kernel(c.script);
            if (!c.fail.empty()) kernel.fail(c.fail);
            CreateOptions o = b.options();
            if (c.bad_pid_file) o.pid_file = b.tmp.path + "/no-such-dir/pid";
            const std::string error = b.create_fails(kernel, o);
            if (c.bad_pid_file)
                BOOST_TEST(contains(error, "no-such-dir"), error);
            else
                BOOST_TEST(error == c.error);
            BOOST_TEST(after(kernel.events(), c.last) == "kill_and_reap init | cgroup destroy");
            check_nothing_left(b, kernel);
            BOOST_TEST(b.hooks_run() == c.hooks);
        }
    }
}

BOOST_AUTO_TEST_CASE(init_gone_before_its_pid_is_read_fails_create) {
    Bundle b;
    FakeKernel kernel(plain_create_until(2, {step::fork_init_that_dies()}));
    BOOST_TEST(b.create_fails(kernel) == "container init exited during setup");
    BOOST_TEST(after(kernel.events(), "start time init") == "kill_and_reap init | cgroup destroy");
    check_nothing_left(b, kernel);
    BOOST_TEST(b.hooks_run() == "");
}

BOOST_AUTO_TEST_CASE(a_failing_hook_fails_create_and_poststop_still_runs) {
    for (const char* hook : {"prestart", "createRuntime"}) {
        BOOST_TEST_CONTEXT(hook) {
            Bundle b;
            b.add_hook(hook, "false");
            FakeKernel kernel(plain_create());
            const std::string error = b.create_fails(kernel);
            BOOST_TEST(contains(error, hook), error);
            BOOST_TEST(after(kernel.events(), "start time init") == "kill_and_reap init | cgroup destroy");
            check_nothing_left(b, kernel);
            const std::string ran = std::string(hook) == "prestart" ? "prestart poststop "
                                                                    : "prestart createRuntime poststop ";
            BOOST_TEST(b.hooks_run() == ran);
        }
    }
}

// A container that exists is not touched: nothing is made, and its state dir stays.
BOOST_AUTO_TEST_CASE(an_id_in_use_fails_before_anything_is_made) {
    Bundle b;
    b.store.create_dir("c1");
    FakeKernel kernel(plain_create());
    BOOST_TEST(b.create_fails(kernel) == "container with id exists: c1");
    BOOST_TEST(joined(kernel.events()) == "");
    BOOST_TEST(fs::exists(b.store.dir("c1")));
}

// Not root, a cgroup that may not be made is no error for a spec without limits (the
// container runs without one); as root it is.
BOOST_AUTO_TEST_CASE(a_cgroup_denied_is_fatal_only_as_root_or_with_limits) {
    {
        Bundle b;
        FakeKernel kernel(plain_create());
        kernel.fail("cgroup create", EACCES);
        if (::geteuid() == 0) {
            BOOST_TEST(b.create_fails(kernel) == "fake cgroup create: Permission denied");
            check_nothing_left(b, kernel);
        } else {
            CreateResult r = b.create(kernel);
            BOOST_TEST(r.state.cgroup.is_null());
            BOOST_TEST(!contains(joined(kernel.events()), "cgroup apply"));
            BOOST_TEST(joined(kernel.leftovers()) == "init running");
        }
    }
    Bundle b;
    b.config["linux"]["resources"] = {{"pids", {{"limit", 10}}}};
    FakeKernel kernel(plain_create());
    kernel.fail("cgroup create", EACCES);
    BOOST_TEST(b.create_fails(kernel) == "fake cgroup create: Permission denied");
    check_nothing_left(b, kernel);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(exec_orchestration)
using namespace create_orchestration_tests;

namespace {

// A created container "c1" in the store, as create left it, with the fake's cgroup.
struct Created {
    Bundle b;
    ContainerState st;

    Created() {
        b.store.create_dir("c1");
        fs::write_file_atomic(b.store.config_path("c1"), b.config.dump(), 0600);
        st.id = "c1";
        st.pid = kFakeInit;
        st.bundle = b.dir;
        st.cgroup = FakeKernel::cgroup_record("c1");
    }

    ExecOptions options() const {
        ExecOptions o;
        o.id = "c1";
        o.args = {"true"};
        o.detach = true;
        o.pid_file = b.pid_file;
        return o;
    }
};

// The exec'd process's conversation: it joins the cgroup, then runs (EOF at its execve).
std::vector<testing::ChildStep> plain_exec() {
    return {step::fork_init(kFakeExecProcess), step::send(msg::JoinCgroup{}), step::expect(SyncType::CgroupJoined),
            step::send(msg::Ready{})};
}

}  // namespace

BOOST_AUTO_TEST_CASE(exec_joins_the_cgroup_before_ready_and_returns_once_the_process_runs) {
    Created c;
    FakeKernel kernel(plain_exec());
    BOOST_TEST(exec_in_container(c.b.store, c.st, Status::Created, c.options(), kernel) == 0);
    BOOST_TEST(joined(kernel.events()) ==
               "open namespaces of init | cgroup open c1 | start stage1 | wait stage1 | cgroup add 5000003 | "
               "child got CgroupJoined");
    BOOST_TEST(kernel.child_error() == "");
    BOOST_TEST(joined(kernel.leftovers()) == "5000003 running");
    BOOST_TEST(fs::read_file(c.b.pid_file) == std::to_string(kFakeExecProcess));
}

BOOST_AUTO_TEST_CASE(exec_failures_kill_the_process_and_reap_stage1) {
    struct Case {
        std::string name;
        std::vector<testing::ChildStep> script;
        std::string fail;
        std::string error;
        std::string undo;  // the events after the last "child got"/failed one
        std::string last;
    };
    const std::vector<Case> cases = {
        {"stage 1 not started", plain_exec(), "start stage1", "fake start stage1: Input/output error", "",
         "start stage1"},
        {"stage 1 cannot join", {step::send(msg::Error{"setns mnt: Invalid argument"})}, "",
         "setns mnt: Invalid argument", "kill stage1 | wait stage1", "start stage1"},
        {"the process not added to the cgroup", plain_exec(), "cgroup add 5000003",
         "fake cgroup add 5000003: Input/output error", "kill 5000003 | kill stage1 | wait stage1",
         "cgroup add 5000003"},
        {"execve fails", {step::fork_init(kFakeExecProcess), step::send(msg::JoinCgroup{}),
                          step::expect(SyncType::CgroupJoined), step::send(msg::Ready{}),
                          step::send(msg::Error{"exec: \"true\": executable file not found in $PATH"})},
         "", "exec: \"true\": executable file not found in $PATH", "kill 5000003 | kill stage1 | wait stage1",
         "child got CgroupJoined"},
        {"the process dies in setup", {step::fork_init(kFakeExecProcess), step::hang_up()}, "",
         "container init exited unexpectedly", "wait stage1 | kill 5000003 | kill stage1 | wait stage1",
         "start stage1"},
    };
    for (const auto& k : cases) {
        BOOST_TEST_CONTEXT(k.name) {
            Created c;
            FakeKernel kernel(k.script);
            if (!k.fail.empty()) kernel.fail(k.fail);
            BOOST_TEST(testing::message_of([&] {
                           exec_in_container(c.b.store, c.st, Status::Created, c.options(), kernel);
                       }) == k.error);
            BOOST_TEST(after(kernel.events(), k.last) == k.undo);
            BOOST_TEST(joined(kernel.leftovers()) == "");
            BOOST_TEST(!fs::exists(c.b.pid_file));
            // The container is exec's to use, not to undo.
            BOOST_TEST(fs::exists(c.b.store.config_path("c1")));
            BOOST_TEST(joined(kernel.cgroups_left()) == "c1");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

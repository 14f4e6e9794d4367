// The create/exec sync channel (runtime/container/sync.hpp): the typed messages'
// encoding, what decoding refuses, and the parent's serve loop driven over a real
// socketpair by a fake child whose packets are queued before the loop runs.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "runtime/container/sync.hpp"
#include "runtime/container/sync_parent.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/util/error.hpp"

namespace sync_channel {
using namespace sandlock;
using namespace sandlock::container;

struct Pipe {
    UniqueFd read, write;
    Pipe() {
        int p[2];
        BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        read = UniqueFd(p[0]);
        write = UniqueFd(p[1]);
    }
};

UniqueFd dup_of(const UniqueFd& fd) { return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)); }

// Sends bytes as one raw packet, as a child that does not speak the protocol would.
void send_raw(const SyncSocket& sock, const std::string& bytes) {
    BOOST_REQUIRE(::write(sock.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

std::string raw(SyncType type, const std::string& payload) {
    return std::string(1, static_cast<char>(type)) + payload;
}

bool error_has(const Error& e, const std::string& part) {
    if (std::string(e.what()).find(part) != std::string::npos) return true;
    BOOST_TEST_MESSAGE("error was: " << e.what());
    return false;
}

// Whether decoding throws sandlock::Error with `part` in its message.
bool refused(const std::string& bytes, const std::string& part, UniqueFd fd = UniqueFd()) {
    try {
        decode(bytes, std::move(fd));
    } catch (const Error& e) {
        return error_has(e, part);
    }
    return false;
}

bool error_is(const Error& e, const std::string& text) {
    if (text == e.what()) return true;
    BOOST_TEST_MESSAGE("error was: " << e.what());
    return false;
}

// What a parent's handlers saw, in order.
struct Calls {
    std::vector<std::string> names;
    std::string joined() const {
        std::string all;
        for (const auto& n : names) all += (all.empty() ? "" : " ") + n;
        return all;
    }
};

// The create protocol's handlers, recording their calls; the fake child plays stage 1 and init.
ParentHandlers recording_create_handlers(Calls& calls, SyncSocket& parent, bool stage1_joins) {
    ParentHandlers h;
    h.order = {{SyncType::UsernsReady, false}, {SyncType::JoinCgroup},   {SyncType::LeaveCgroup, false},
               {SyncType::InitPid},            {SyncType::RunHooks},     {SyncType::Console, false},
               {SyncType::EgressListener, false}, {SyncType::SeccompListener, false}, {SyncType::Ready}};
    h.init_pid = [&calls](pid_t pid) { calls.names.push_back("init_pid " + std::to_string(pid)); };
    h.userns_ready = [&calls] { calls.names.push_back("userns_ready"); };
    h.join_cgroup = [&calls, stage1_joins](bool makes_ns) {
        calls.names.push_back(std::string("join_cgroup ") + (makes_ns ? "cgroupns" : "-"));
        return stage1_joins;
    };
    h.leave_cgroup = [&calls] { calls.names.push_back("leave_cgroup"); };
    h.after_cgroup_step = [&calls, &parent] {
        calls.names.push_back("after_cgroup_step");
        parent.send(msg::EgressMode{egress::Enforcement::Kernel});
    };
    h.run_hooks = [&calls] {
        calls.names.push_back("run_hooks");
        return std::string(R"({"id":"c1"})");
    };
    h.egress_listener = [&calls](UniqueFd fd) {
        calls.names.push_back(std::string("egress_listener ") + (fd ? "fd" : "none"));
    };
    return h;
}

}  // namespace sync_channel

BOOST_AUTO_TEST_SUITE(sync_channel)

BOOST_AUTO_TEST_CASE(typed_messages_round_trip_over_the_socket) {
    auto [a, b] = SyncSocket::make_pair();
    a.send(msg::JoinCgroup{.makes_cgroup_ns = true});
    BOOST_TEST(b.expect<msg::JoinCgroup>().makes_cgroup_ns);
    a.send(msg::JoinCgroup{});
    BOOST_TEST(!b.expect<msg::JoinCgroup>().makes_cgroup_ns);
    a.send(msg::CgroupJoined{.joined = true});
    BOOST_TEST(b.expect<msg::CgroupJoined>().joined);
    a.send(msg::EgressMode{egress::Enforcement::Supervisor});
    BOOST_TEST((b.expect<msg::EgressMode>().mode == egress::Enforcement::Supervisor));
    a.send(msg::EgressMode{egress::Enforcement::Kernel});
    BOOST_TEST((b.expect<msg::EgressMode>().mode == egress::Enforcement::Kernel));
    a.send(msg::InitPid{.pid = 4194304});
    BOOST_TEST(b.expect<msg::InitPid>().pid == 4194304);
    a.send(msg::HooksDone{R"({"ociVersion":"1.0.2","id":"c1"})"});
    BOOST_TEST(b.expect<msg::HooksDone>().state_json == R"({"ociVersion":"1.0.2","id":"c1"})");
    a.send(msg::HooksDone{});  // init has no hooks: no state
    BOOST_TEST(b.expect<msg::HooksDone>().state_json.empty());
    a.send(msg::SeccompListener{.fd = 7});
    BOOST_TEST(b.expect<msg::SeccompListener>().fd == 7);
    a.send(msg::EgressListener{.fd = 0});
    BOOST_TEST(b.expect<msg::EgressListener>().fd == 0);
    a.send(msg::Error{"boom: it broke"});
    BOOST_TEST(std::get<msg::Error>(b.recv()).message == "boom: it broke");
    a.send(msg::Ready{});
    BOOST_TEST((type_of(b.recv()) == SyncType::Ready));
}

BOOST_AUTO_TEST_CASE(console_carries_its_pty_master_as_an_fd) {
    auto [a, b] = SyncSocket::make_pair();
    Pipe p;
    a.send(msg::Console{"/dev/pts/3", dup_of(p.read)});
    auto console = b.expect<msg::Console>();
    BOOST_TEST(console.slave_name == "/dev/pts/3");
    BOOST_REQUIRE(console.master.valid());
    BOOST_TEST(::write(p.write.get(), "x", 1) == 1);
    char c = 0;
    BOOST_TEST(::read(console.master.get(), &c, 1) == 1);
    BOOST_TEST(c == 'x');
}

BOOST_AUTO_TEST_CASE(malformed_payloads_are_errors_that_name_the_message) {
    BOOST_TEST(refused(raw(SyncType::InitPid, ""), "malformed InitPid message"));
    BOOST_TEST(refused(raw(SyncType::InitPid, "12x"), "\"12x\" is not a number"));
    BOOST_TEST(refused(raw(SyncType::InitPid, "0"), "is not a number from 1"));
    BOOST_TEST(refused(raw(SyncType::InitPid, "-5"), "is not a number"));
    BOOST_TEST(refused(raw(SyncType::InitPid, " 5"), "is not a number"));
    BOOST_TEST(refused(raw(SyncType::InitPid, "99999999999"), "is not a number"));
    BOOST_TEST(refused(raw(SyncType::SeccompListener, "-1"), "malformed SeccompListener message"));
    BOOST_TEST(refused(raw(SyncType::EgressListener, "three"), "malformed EgressListener message"));
    BOOST_TEST(refused(raw(SyncType::EgressMode, "fast"), "unknown mode \"fast\""));
    BOOST_TEST(refused(raw(SyncType::EgressMode, "kernel:"), "unknown mode \"kernel:\""));  // the old payload
    BOOST_TEST(refused(raw(SyncType::EgressMode, ""), "unknown mode \"\""));
    BOOST_TEST(refused(raw(SyncType::JoinCgroup, "yes"), "neither empty nor \"cgroupns\""));
    BOOST_TEST(refused(raw(SyncType::CgroupJoined, "cgroupns"), "neither empty nor \"joined\""));
    BOOST_TEST(refused(raw(SyncType::HooksDone, "[1]"), "not a JSON object"));
    BOOST_TEST(refused(raw(SyncType::HooksDone, "{\"id\":"), "not a JSON object"));
    BOOST_TEST(refused(raw(SyncType::HooksDone, " "), "not a JSON object"));
    BOOST_TEST(refused(raw(SyncType::HooksDone, "{} x"), "not a JSON object"));
    BOOST_TEST(refused(raw(SyncType::Ready, "now"), "malformed Ready message: a payload"));
    BOOST_TEST(refused(raw(SyncType::Console, "/dev/pts/0"), "malformed Console message: no pty attached"));
    Pipe p;
    BOOST_TEST(refused(raw(SyncType::Console, ""), "no pty name", dup_of(p.read)));
    BOOST_TEST(refused(raw(SyncType::Ready, ""), "an fd it does not carry", dup_of(p.read)));
    BOOST_TEST(refused(std::string(1, '\0'), "unknown message type 0"));
    BOOST_TEST(refused(std::string(1, '\xc8'), "unknown message type 200"));
    BOOST_TEST(refused("", "empty packet"));
}

BOOST_AUTO_TEST_CASE(expect_names_what_came_instead_and_rethrows_errors) {
    auto [a, b] = SyncSocket::make_pair();
    a.send(msg::Error{"boom"});
    BOOST_CHECK_EXCEPTION(b.expect<msg::Ready>(), Error, [](const Error& e) { return error_is(e, "boom"); });
    a.send(msg::Ready{});
    BOOST_CHECK_EXCEPTION(b.expect<msg::InitPid>(), Error,
                          [](const Error& e) { return error_is(e, "sync: expected InitPid, got Ready"); });
    send_raw(a, raw(SyncType::InitPid, "abc"));
    BOOST_CHECK_THROW(b.expect<msg::InitPid>(), Error);
    a.close();
    BOOST_CHECK_EXCEPTION(b.recv(), Error,
                          [](const Error& e) { return error_is(e, "container init exited unexpectedly"); });
}

BOOST_AUTO_TEST_CASE(serve_loop_runs_the_create_steps_and_replies_in_order) {
    auto [parent, child] = SyncSocket::make_pair();
    Calls calls;
    ParentHandlers h = recording_create_handlers(calls, parent, /*stage1_joins=*/true);
    Pipe listener;
    Pipe pty;
    child.send(msg::UsernsReady{});
    child.send(msg::JoinCgroup{.makes_cgroup_ns = true});
    child.send(msg::LeaveCgroup{});
    child.send(msg::InitPid{.pid = ::getpid()});  // the listener's fd is taken from us
    child.send(msg::RunHooks{});
    child.send(msg::Console{"/dev/pts/9", dup_of(pty.read)});
    child.send(msg::EgressListener{.fd = listener.read.get()});
    child.send(msg::Ready{});

    Served served = serve_child(parent, h);
    BOOST_TEST(served.pid == ::getpid());
    BOOST_TEST(served.console_master.valid());
    BOOST_TEST(calls.joined() == "userns_ready join_cgroup cgroupns leave_cgroup after_cgroup_step init_pid " +
                                     std::to_string(::getpid()) + " run_hooks egress_listener fd");
    child.expect<msg::UsernsMapped>();
    BOOST_TEST(child.expect<msg::CgroupJoined>().joined);
    child.expect<msg::CgroupLeft>();
    BOOST_TEST((child.expect<msg::EgressMode>().mode == egress::Enforcement::Kernel));
    BOOST_TEST(child.expect<msg::HooksDone>().state_json == R"({"id":"c1"})");
    child.expect<msg::EgressDone>();
}

BOOST_AUTO_TEST_CASE(serve_loop_ends_the_cgroup_step_at_cgroup_joined_when_not_joined) {
    auto [parent, child] = SyncSocket::make_pair();
    Calls calls;
    ParentHandlers h = recording_create_handlers(calls, parent, /*stage1_joins=*/false);
    child.send(msg::JoinCgroup{});
    child.send(msg::InitPid{.pid = 42});
    child.send(msg::RunHooks{});
    child.send(msg::Ready{});
    serve_child(parent, h);
    BOOST_TEST(calls.joined() == "join_cgroup - after_cgroup_step init_pid 42 run_hooks");
    BOOST_TEST(!child.expect<msg::CgroupJoined>().joined);
    child.expect<msg::EgressMode>();
}

BOOST_AUTO_TEST_CASE(serve_loop_refuses_messages_out_of_order) {
    struct Case {
        std::vector<std::string> packets;
        std::string error;
    };
    const std::vector<Case> cases = {
        // A required step skipped.
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::InitPid, "42"), raw(SyncType::Ready, "")},
         "sync: expected RunHooks, got Ready"},
        {{raw(SyncType::InitPid, "42")}, "sync: expected JoinCgroup, got InitPid"},
        // A step from the past: stage 1's after init's.
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::InitPid, "42"), raw(SyncType::UsernsReady, "")},
         "sync: expected RunHooks, got UsernsReady"},
        // Twice.
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::JoinCgroup, "")}, "sync: expected InitPid, got JoinCgroup"},
        // Only optional steps left before Ready, or a message only the parent sends.
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::InitPid, "42"), raw(SyncType::RunHooks, ""),
          raw(SyncType::RunHooks, "")},
         "sync: expected Ready, got RunHooks"},
        {{raw(SyncType::HooksDone, "{}")}, "sync: expected JoinCgroup, got HooksDone"},
        // Malformed, and the child's own failure.
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::InitPid, "1e3")}, "sync: malformed InitPid message"},
        {{raw(SyncType::JoinCgroup, ""), raw(SyncType::Error, "init: mount failed")}, "init: mount failed"},
    };
    for (const auto& c : cases) {
        // The child's end stays open: the loop's replies must not meet a closed peer (SIGPIPE).
        auto [parent, child] = SyncSocket::make_pair();
        Calls calls;
        ParentHandlers h = recording_create_handlers(calls, parent, false);
        for (const auto& p : c.packets) send_raw(child, p);
        BOOST_CHECK_EXCEPTION(serve_child(parent, h), Error, [&](const Error& e) { return error_has(e, c.error); });
    }
}

BOOST_AUTO_TEST_CASE(serve_loop_fails_when_the_child_hangs_up) {
    auto [parent, child] = SyncSocket::make_pair();
    Calls calls;
    ParentHandlers h = recording_create_handlers(calls, parent, false);
    child.close();
    BOOST_CHECK_EXCEPTION(serve_child(parent, h), Error,
                          [](const Error& e) { return error_is(e, "container init exited unexpectedly"); });
    BOOST_TEST(calls.names.empty());
}

BOOST_AUTO_TEST_CASE(serve_loop_serves_exec_and_closes_an_untaken_seccomp_listener) {
    auto [parent, child] = SyncSocket::make_pair();
    Calls calls;
    ParentHandlers h;
    h.order = {{SyncType::InitPid},
               {SyncType::Console, false},
               {SyncType::EgressListener, false},
               {SyncType::SeccompListener, false},
               {SyncType::JoinCgroup},
               {SyncType::Ready}};
    spec::Seccomp no_listener_path;
    h.seccomp = &no_listener_path;
    h.init_pid = [&calls](pid_t) { calls.names.push_back("init_pid"); };
    h.join_cgroup = [&calls](bool) {
        calls.names.push_back("join_cgroup");
        return false;
    };
    Pipe listener;
    child.send(msg::InitPid{.pid = ::getpid()});
    child.send(msg::SeccompListener{.fd = listener.write.get()});
    child.send(msg::JoinCgroup{});
    child.send(msg::Ready{});
    Served served = serve_child(parent, h);
    BOOST_TEST(!served.console_master.valid());
    BOOST_TEST(calls.joined() == "init_pid join_cgroup");
    child.expect<msg::SeccompDone>();
    BOOST_TEST(!child.expect<msg::CgroupJoined>().joined);
    // The loop's copy of the listener is closed: ours is now the only write end.
    listener.write.reset();
    char c;
    BOOST_TEST(::read(listener.read.get(), &c, 1) == 0);
}

BOOST_AUTO_TEST_CASE(a_pty_needs_a_taker_and_a_console_socket_a_pty) {
    BOOST_CHECK_NO_THROW(check_console_destination(true, true, "/run/console.sock"));
    BOOST_CHECK_NO_THROW(check_console_destination(true, false, ""));
    BOOST_CHECK_NO_THROW(check_console_destination(false, true, ""));
    BOOST_CHECK_EXCEPTION(check_console_destination(true, true, ""), Error, [](const Error& e) {
        return error_is(e, "cannot allocate tty if runc will detach without setting console socket");
    });
    BOOST_CHECK_EXCEPTION(check_console_destination(false, false, "/run/console.sock"), Error, [](const Error& e) {
        return error_is(e, "cannot use console socket if runc will not detach or allocate tty");
    });
}

BOOST_AUTO_TEST_SUITE_END()

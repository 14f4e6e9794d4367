// Container's status guards (each status × operation) and its refusals, with the
// wording runc's callers match; no root and no process needed: the refused
// operations throw before touching anything, and the container has no cgroup
// (the null manager), so "has no cgroup" is checked too.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <string>

#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "tests/support.hpp"

namespace container_guards {
using namespace sandlock;
using container::Container;
using testing::message_of;
using container::Status;

constexpr Status kStatuses[] = {Status::Creating, Status::Created, Status::Running, Status::Paused,
                                Status::Stopped};

// A container "t" recorded in a temp store, with no cgroup.
struct Fixture {
    testing::TempDir tmp{"sandlock-container-test"};
    container::StateStore store{tmp.path + "/root"};

    Container make(Status status, bool frozen = false) const {
        container::ContainerState st;
        st.id = "t";
        return Container(store, st, status, frozen);
    }
};

}  // namespace container_guards

BOOST_AUTO_TEST_SUITE(container_guards)

BOOST_FIXTURE_TEST_CASE(what_each_status_allows, Fixture) {
    struct Allowed {
        Status status;
        bool start, exec, kill, pause, update, stats, remove;
    };
    // As runc: a created container can be exec'd into, paused, updated and deleted.
    const Allowed table[] = {
        {Status::Creating, false, true, true, false, true, true, false},
        {Status::Created, true, true, true, true, true, true, true},
        {Status::Running, false, true, true, true, true, true, false},
        {Status::Paused, false, false, true, false, true, true, false},
        {Status::Stopped, false, false, false, false, false, false, true},
    };
    for (const auto& want : table) {
        const Container c = make(want.status);
        const std::string name = container::status_name(want.status);
        BOOST_TEST(c.can_start() == want.start, name);
        BOOST_TEST(c.can_exec() == want.exec, name);
        BOOST_TEST(c.can_kill() == want.kill, name);
        BOOST_TEST(c.can_pause() == want.pause, name);
        BOOST_TEST(c.can_update() == want.update, name);
        BOOST_TEST(c.can_get_stats() == want.stats, name);
        BOOST_TEST(c.can_delete() == want.remove, name);
    }
}

// resume asks the cgroup: a paused created container still reports "created".
BOOST_FIXTURE_TEST_CASE(resume_needs_a_frozen_cgroup_and_a_live_init, Fixture) {
    for (Status status : kStatuses) {
        const std::string name = container::status_name(status);
        BOOST_TEST(!make(status, false).can_resume(), name);
        BOOST_TEST(make(status, true).can_resume() == (status != Status::Stopped), name);
    }
}

BOOST_FIXTURE_TEST_CASE(refusals_use_runcs_wording, Fixture) {
    BOOST_TEST(message_of([&] { make(Status::Stopped).start(); }) == "cannot start a container that has stopped");
    BOOST_TEST(message_of([&] { make(Status::Running).start(); }) == "cannot start an already running container");
    BOOST_TEST(message_of([&] { make(Status::Paused).start(); }) == "cannot start a container in the paused state");
    BOOST_TEST(message_of([&] { make(Status::Creating).start(); }) ==
               "cannot start a container in the creating state");

    container::ExecOptions exec;
    exec.id = "t";
    BOOST_TEST(message_of([&] { make(Status::Stopped).exec(exec); }) == "cannot exec in a stopped container");
    BOOST_TEST(message_of([&] { make(Status::Paused).exec(exec); }) == "cannot exec in a paused container");

    BOOST_TEST(message_of([&] { make(Status::Stopped).kill(SIGTERM, false); }) == "container not running");
    BOOST_TEST(message_of([&] { make(Status::Stopped).pause(); }) == "container not running");
    BOOST_TEST(message_of([&] { make(Status::Paused).pause(); }) == "container not running");
    BOOST_TEST(message_of([&] { make(Status::Running).resume(); }) == "container not paused");
    BOOST_TEST(message_of([&] { make(Status::Stopped, true).resume(); }) == "container not paused");
    BOOST_TEST(message_of([&] { make(Status::Stopped).update(nlohmann::json::object()); }) == "container not running");
    BOOST_TEST(message_of([&] { make(Status::Stopped).stats(); }) == "container not running");

    for (Status status : {Status::Creating, Status::Running, Status::Paused}) {
        Container c = make(status);
        BOOST_TEST(message_of([&] { c.destroy(false); }) ==
                   std::string("cannot delete container t that is not stopped: ") + container::status_name(status));
    }
}

// The operations that need a cgroup say so; the others have nothing to do without one.
BOOST_FIXTURE_TEST_CASE(a_container_without_a_cgroup, Fixture) {
    BOOST_TEST(message_of([&] { make(Status::Running).pause(); }) == "container t has no cgroup to freeze");
    BOOST_TEST(message_of([&] { make(Status::Running).update(nlohmann::json::object()); }) ==
               "container t has no cgroup to update");
    BOOST_TEST(message_of([&] { make(Status::Running).stats(); }) == "container t has no cgroup");
    BOOST_TEST(make(Status::Running).pids().empty());
    BOOST_TEST(!make(Status::Running).still_running());
    BOOST_TEST(message_of([&] { make(Status::Running, true).resume(); }) == "");
    BOOST_TEST(message_of([&] { make(Status::Stopped).kill(SIGKILL, true); }) == "");
}

BOOST_FIXTURE_TEST_CASE(load_and_delete_a_stopped_container, Fixture) {
    BOOST_TEST(message_of([&] { Container::load(store, "t"); }) == "container \"t\" does not exist");
    // --force on a missing container is no error (runc).
    BOOST_TEST(message_of([&] { Container::destroy_by_id(store, "t", true); }) == "");

    container::ContainerState st;
    st.id = "t";  // pid 0: no init, so stopped
    store.create_dir("t");
    store.save(st);
    Container c = Container::load(store, "t");
    BOOST_TEST((c.status() == Status::Stopped));
    BOOST_TEST(c.state_json()["status"] == "stopped");
    BOOST_TEST(c.state_json()["pid"] == 0);
    c.destroy(false);  // no config saved: the poststop hooks are skipped with a warning
    BOOST_TEST(!store.exists("t"));
    BOOST_TEST(!fs::exists(store.dir("t")));
}

BOOST_AUTO_TEST_SUITE_END()

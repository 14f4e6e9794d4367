#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/container/state.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "tests/support.hpp"

namespace state {
using namespace sandlock;
struct TempRoot {
    std::string path;
    TempRoot() {
        char tmpl[] = "/tmp/sandlock-state-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempRoot() { std::filesystem::remove_all(path); }
};
}  // namespace state

BOOST_AUTO_TEST_SUITE(state)

BOOST_AUTO_TEST_CASE(save_load_round_trip_and_duplicate_ids) {
    TempRoot tmp;
    container::StateStore store(tmp.path + "/root");
    store.create_dir("c1");
    container::ContainerState st;
    st.id = "c1";
    st.pid = ::getpid();
    st.init_start_time = *proc::start_time(::getpid());
    st.bundle = "/b";
    st.created = "now";
    st.annotations["a"] = "b";
    st.cgroup = {{"kind", "v1"}};
    store.save(st);
    auto back = store.load("c1");
    BOOST_TEST(back.pid == st.pid);
    BOOST_TEST(back.init_start_time == st.init_start_time);
    BOOST_TEST(back.annotations.at("a") == "b");
    BOOST_TEST(back.cgroup["kind"].get<std::string>() == "v1");
    BOOST_TEST(store.list_ids() == std::vector<std::string>{"c1"}, boost::test_tools::per_element());
    BOOST_CHECK_EXCEPTION(store.create_dir("c1"), Error, [](const Error& e) {
        return std::string(e.what()) == "container with id exists: c1";
    });
    // Our own process is alive and has no exec.fifo: it reads as running.
    BOOST_TEST(std::string(container::status_name(container::current_status(store, back))) == container::status_name(container::Status::Running));
    fs::write_file_atomic(store.fifo_path("c1"), "");
    BOOST_TEST(std::string(container::status_name(container::current_status(store, back))) == container::status_name(container::Status::Created));
    back.init_start_time += 1;  // a reused pid is not our init
    BOOST_TEST(std::string(container::status_name(container::current_status(store, back))) == container::status_name(container::Status::Stopped));
    store.remove_dir("c1");
    BOOST_TEST(!store.exists("c1"));
}

BOOST_AUTO_TEST_CASE(missing_container_uses_runc_wording) {
    TempRoot tmp;
    container::StateStore store(tmp.path);
    BOOST_CHECK_EXCEPTION(store.load("nope"), Error, [](const Error& e) {
        return std::string(e.what()) == "container \"nope\" does not exist";
    });
}

// podman rootless runs the runtime as root of a user namespace whose uid 0 is the user's:
// that is rootless (state under $XDG_RUNTIME_DIR), the host's root is not.
BOOST_AUTO_TEST_CASE(root_of_a_user_namespace_of_a_user_is_rootless,
                     *boost::unit_test::precondition(testing::needs_root)) {
    BOOST_TEST(!os::rootless());
    int rc = testing::run_child([] {
        using testing::require;
        ::setenv("XDG_RUNTIME_DIR", "/tmp/xdg-test", 1);
        require(container::default_root() == "/run/sandlock-runc", 1, "host root: /run");
        require(::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0, 2, "setresuid");
        // a uid change makes the process non-dumpable: its /proc files root's
        ::prctl(PR_SET_DUMPABLE, 1);
        require(os::rootless(), 3, "nobody is rootless");
        require(::unshare(CLONE_NEWUSER) == 0, 4, "unshare(CLONE_NEWUSER)");
        // an unprivileged process may map its own uid, and nothing else, to 0
        fs::write_file("/proc/self/uid_map", "0 65534 1");
        require(::geteuid() == 0, 5, "root in the namespace");
        require(os::rootless(), 6, "root of nobody's namespace is rootless");
        require(container::default_root() == "/tmp/xdg-test/sandlock-runc", 7, "state under XDG_RUNTIME_DIR");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_SUITE_END()

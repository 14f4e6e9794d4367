#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/container/state.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

using namespace sandlock;

namespace {
struct TempRoot {
    std::string path;
    TempRoot() {
        char tmpl[] = "/tmp/sandlock-state-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempRoot() { std::filesystem::remove_all(path); }
};
}  // namespace

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

BOOST_AUTO_TEST_SUITE_END()

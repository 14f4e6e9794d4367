// The egress shim's own cgroup (runtime/container/shim_cgroup.hpp): the operator's
// limits, the sibling path, the hierarchies it uses, and (on a fake tree) a manager
// that places a process there and removes everything it made.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <string>

#include "runtime/cgroups/hierarchy.hpp"
#include "runtime/container/shim_cgroup.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "tests/support.hpp"

namespace shim_cgroup {
using namespace sandlock;
using sandlock::container::ShimLimits;

std::string error_of(const char* memory, const char* pids) {
    try {
        container::parse_shim_limits(memory, pids);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

const std::string kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "37 31 0:34 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

const std::string kSelf =
    "5:devices:/\n"
    "4:memory:/process_api/abc\n"
    "3:pids:/\n"
    "1:cpu,cpuacct:/\n"
    "0::/\n";

}  // namespace shim_cgroup

BOOST_AUTO_TEST_SUITE(shim_cgroup)

BOOST_AUTO_TEST_CASE(limits_default_to_64_mib_and_64_tasks) {
    const ShimLimits l = container::parse_shim_limits(nullptr, "");
    BOOST_CHECK_EQUAL(l.memory, std::int64_t{64} << 20);
    BOOST_CHECK_EQUAL(l.pids, 64);
}

BOOST_AUTO_TEST_CASE(limits_from_the_operator) {
    BOOST_CHECK_EQUAL(container::parse_shim_limits("96M", nullptr).memory, std::int64_t{96} << 20);
    BOOST_CHECK_EQUAL(container::parse_shim_limits("1g", nullptr).memory, std::int64_t{1} << 30);
    BOOST_CHECK_EQUAL(container::parse_shim_limits("20000K", nullptr).memory, std::int64_t{20000} << 10);
    BOOST_CHECK_EQUAL(container::parse_shim_limits("33554432", nullptr).memory, std::int64_t{32} << 20);
    BOOST_CHECK_EQUAL(container::parse_shim_limits("max", "max").memory, -1);
    BOOST_CHECK_EQUAL(container::parse_shim_limits("max", "max").pids, -1);
    BOOST_CHECK_EQUAL(container::parse_shim_limits(nullptr, "128").pids, 128);
}

BOOST_AUTO_TEST_CASE(malformed_or_too_small_limits_name_the_variable) {
    BOOST_CHECK_EQUAL(error_of("lots", nullptr),
                      "SANDLOCK_RUNC_SHIM_MEMORY_MAX=lots: not a size (bytes, or with a K, M or G suffix, or \"max\")");
    BOOST_CHECK_EQUAL(error_of(nullptr, "12k"), "SANDLOCK_RUNC_SHIM_PIDS_MAX=12k: not a number (or \"max\")");
    BOOST_CHECK_EQUAL(error_of(nullptr, "-1"), "SANDLOCK_RUNC_SHIM_PIDS_MAX=-1: not a number (or \"max\")");
    BOOST_CHECK_EQUAL(error_of("1M", nullptr),
                      "SANDLOCK_RUNC_SHIM_MEMORY_MAX=1M: below the 16 MiB the egress shim needs to start");
    BOOST_CHECK_EQUAL(error_of(nullptr, "8"), "SANDLOCK_RUNC_SHIM_PIDS_MAX=8: below the 16 tasks the egress shim needs to start");
    BOOST_CHECK_EQUAL(error_of("99999999999999G", nullptr), "SANDLOCK_RUNC_SHIM_MEMORY_MAX=99999999999999G: too large");
    BOOST_CHECK_EQUAL(error_of("M", nullptr),
                      "SANDLOCK_RUNC_SHIM_MEMORY_MAX=M: not a size (bytes, or with a K, M or G suffix, or \"max\")");
}

BOOST_AUTO_TEST_CASE(the_sibling_path_cannot_be_a_container_id) {
    BOOST_CHECK_EQUAL(container::shim_cgroup_path("/a/b/ctr"), "/a/b/ctr:shim");
    BOOST_CHECK_EQUAL(container::shim_cgroup_path("ctr/"), "ctr:shim");
    BOOST_CHECK_EQUAL(container::shim_cgroup_path("/system.slice/runc-x.scope"), "/system.slice/runc-x.scope:shim");
}

BOOST_AUTO_TEST_CASE(only_the_memory_and_pids_hierarchies_on_v1) {
    const cgroups::Hierarchy host = cgroups::probe(kHybridMountinfo, kSelf, "");
    const cgroups::Hierarchy h = container::shim_hierarchy(host);
    BOOST_CHECK(h.mode == cgroups::Mode::Legacy);
    BOOST_CHECK(!h.v2);
    BOOST_REQUIRE_EQUAL(h.v1.size(), 2u);
    BOOST_CHECK(h.find_v1("memory"));
    BOOST_CHECK(h.find_v1("pids"));
}

BOOST_AUTO_TEST_CASE(a_fake_tree_placed_next_to_the_container_and_removed) {
    testing::TempDir tmp;
    const cgroups::Hierarchy host = cgroups::probe(kHybridMountinfo, kSelf, "");
    for (const auto& m : host.v1) fs::mkdir_p(tmp.path + m.mount_point);
    auto m = cgroups::make_manager(container::shim_hierarchy(host), container::shim_cgroup_path("ctr"), tmp.path);
    const auto dirs = m->dirs();
    BOOST_CHECK_EQUAL(dirs.at("memory"), tmp.path + "/sys/fs/cgroup/memory/process_api/abc/ctr:shim");
    BOOST_CHECK_EQUAL(dirs.at("pids"), tmp.path + "/sys/fs/cgroup/pids/ctr:shim");
    BOOST_CHECK_EQUAL(dirs.size(), 2u);
    BOOST_CHECK_NO_THROW(container::refuse_existing_shim_cgroup(*m));
    m->create();
    BOOST_CHECK(fs::is_dir(dirs.at("pids")));
    BOOST_CHECK_THROW(container::refuse_existing_shim_cgroup(*m), Error);
    m->destroy();
    BOOST_CHECK(!fs::exists(dirs.at("pids")));
    BOOST_CHECK(!fs::exists(dirs.at("memory")));
    BOOST_CHECK(!fs::exists(tmp.path + "/sys/fs/cgroup/memory/process_api"));  // parents it made
}

BOOST_AUTO_TEST_SUITE_END()

// Which entries of a container the programs' shared tables hold, version by version, and
// how `delete` removes them when the shim that registered them died: from the pinned set
// and the versions the container's state records (forget_kernel_policy with KernelEntries).
// Root, a cgroup2 mount and bpffs; skipped otherwise.
#include <boost/test/unit_test.hpp>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "runtime/egress/kernel_layer.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace egress_kernel_versions {
using namespace sandlock;
using namespace sandlock::egress;

class NoDns final : public Resolver {
public:
    std::vector<IpAddr> lookup(const std::string& host) override { throw Error("no DNS in this test: " + host); }
};

ResolvedPolicy allow(const std::string& rules) {
    NoDns dns;
    return resolve(parse_policy({{std::string(kAllowKey), rules}}), dns);
}

std::string cgroup2_root() {
    for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        struct statfs st{};
        if (::statfs(dir, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return dir;
    }
    return "";
}

bool can_run() { return ::geteuid() == 0 && !cgroup2_root().empty() && !kernel_tables().empty(); }

class Cgroup {
public:
    Cgroup() {
        static int n = 0;
        path = cgroup2_root() + "/sandlock-test-versions-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
        if (::mkdir(path.c_str(), 0755) != 0) throw_errno("mkdir " + path);
    }
    Cgroup(const Cgroup&) = delete;
    Cgroup& operator=(const Cgroup&) = delete;
    ~Cgroup() { ::rmdir(path.c_str()); }  // no process ever ran in it

    std::uint64_t id() const { return cgroup_id_of(path); }
    std::string path;
};

// The versions of the container registered in the outer table of its addresses, among
// 0..up_to.
std::vector<std::uint64_t> registered_versions(const Cgroup& cg, std::uint64_t up_to) {
    const UniqueFd table(bpf_obj_get((kernel_tables() + "/policy_addresses").c_str()));
    if (!table) throw_errno("bpf_obj_get policy_addresses");
    std::vector<std::uint64_t> out;
    for (std::uint64_t v = 0; v <= up_to; ++v) {
        const std::uint64_t key = policy_key(cg.id(), v);
        std::uint32_t inner_id = 0;
        if (bpf_map_lookup_elem(table.get(), &key, &inner_id) == 0) out.push_back(v);
    }
    return out;
}

using Versions = std::vector<std::uint64_t>;

// Copies of the fds of a handover, as the shim receives them.
std::vector<UniqueFd> received(const std::vector<int>& fds) {
    std::vector<UniqueFd> out;
    for (const int fd : fds) out.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    return out;
}

}  // namespace egress_kernel_versions

BOOST_AUTO_TEST_SUITE(egress_kernel_versions)

BOOST_AUTO_TEST_CASE(live_changes_keep_the_current_and_the_previous_version,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    Cgroup cg;
    KernelLayer layer(allow("10.1.2.3:80"));
    layer.attach(cg.path);
    BOOST_TEST(layer.version() == 0u);
    BOOST_TEST(registered_versions(cg, 5) == Versions({0}), boost::test_tools::per_element());
    layer.replace(allow("10.1.2.4:80"));
    layer.replace(allow("10.1.2.5:80"));
    BOOST_TEST(layer.version() == 2u);
    BOOST_TEST(registered_versions(cg, 5) == Versions({1, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(delete_removes_the_recorded_versions_from_the_recorded_tables,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    Cgroup cg, other;
    KernelLayer layer(allow("10.1.2.3:80"));  // the dead shim's: its entries stay while it lives
    layer.attach(cg.path);
    KernelLayer neighbour(allow("10.1.2.3:80"));
    neighbour.attach(other.path);
    for (const char* next : {"10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}) layer.replace(allow(next));
    BOOST_TEST(registered_versions(cg, 5) == Versions({2, 3}), boost::test_tools::per_element());
    // A record that lags (the shim recorded nothing since version 1) misses them: the
    // record is what delete goes by.
    forget_kernel_policy(cg.path, {kernel_tables(), 1});
    BOOST_TEST(registered_versions(cg, 5) == Versions({2, 3}), boost::test_tools::per_element());
    // The shim records the next version before registering it: 4 (never registered here,
    // as when the shim died in between) covers 3 and 2.
    forget_kernel_policy(cg.path, {kernel_tables(), 4});
    BOOST_TEST(registered_versions(cg, 5).empty());
    BOOST_TEST(registered_versions(other, 0) == Versions({0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(delete_without_a_record_searches_the_tables,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    Cgroup cg;
    KernelLayer layer(allow("10.1.2.3:80"));
    layer.attach(cg.path);
    for (const char* next : {"10.1.2.4:80", "10.1.2.5:80"}) layer.replace(allow(next));
    // An older build's container (no tables in its state), versions unknown: every one goes.
    forget_kernel_policy(cg.path, {std::nullopt, std::nullopt});
    BOOST_TEST(registered_versions(cg, 5).empty());
    // Unpinned tables ("": bpffs was not mounted at create) hold nothing to forget.
    Cgroup again;
    KernelLayer kept(allow("10.1.2.3:80"));
    kept.attach(again.path);
    forget_kernel_policy(again.path, {std::string(), 0});
    BOOST_TEST(registered_versions(again, 0) == Versions({0}), boost::test_tools::per_element());
}

// The shim changes the policy through the tables create handed it, not through bpffs pins
// (which a host without bpffs does not have): a live change works with the fds alone.
BOOST_AUTO_TEST_CASE(the_shim_changes_a_handed_over_policy_through_the_handed_over_tables,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    Cgroup cg;
    const ResolvedPolicy policy = allow("10.1.2.3:80");
    KernelLayer created(policy);
    created.attach(cg.path);
    const KernelLayer::Handover h = created.handover();
    BOOST_TEST(h.fds.size() == KernelLayer::kHandoverFds);
    // Too few fds, or two swapped: refused, nothing adopted.
    std::vector<int> short_fds(h.fds.begin(), h.fds.begin() + 5);
    BOOST_CHECK_THROW(KernelLayer::adopt(policy, h.id, received(short_fds)), Error);
    std::vector<int> swapped = h.fds;
    std::swap(swapped[5], swapped[6]);
    BOOST_CHECK_THROW(KernelLayer::adopt(policy, h.id, received(swapped)), Error);
    KernelLayer shim = KernelLayer::adopt(policy, h.id, received(h.fds));
    created.handed_over();
    shim.replace(allow("10.1.2.4:80"));
    BOOST_TEST(shim.version() == 1u);
    BOOST_TEST(registered_versions(cg, 3) == Versions({0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

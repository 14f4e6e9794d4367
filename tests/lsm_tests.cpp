// AppArmor and SELinux requests: refused with one line naming the field where the host
// cannot apply them (runtime/linux/lsm.hpp), never dropped.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

#include "runtime/linux/lsm.hpp"
#include "runtime/util/error.hpp"

namespace lsm {
using namespace sandlock;

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace lsm

BOOST_AUTO_TEST_SUITE(lsm)

BOOST_AUTO_TEST_CASE(empty_labels_are_not_requests) {
    spec::Process p;
    p.apparmor_profile = "";
    p.selinux_label = "";
    BOOST_TEST(error_of([&] { os::check_process_labels(p, ".process"); }) == "<no error>");
    BOOST_TEST(error_of([] { os::check_mount_label(spec::Linux{}); }) == "<no error>");
    BOOST_TEST(error_of([] { os::apply_apparmor_profile(""); }) == "<no error>");
}

BOOST_AUTO_TEST_CASE(apparmor_profile_refused_without_apparmor) {
    spec::Process p;
    p.apparmor_profile = "slit-profile";
    const std::string err = error_of([&] { os::check_process_labels(p, ".process"); });
    if (os::apparmor_enabled()) {
        BOOST_TEST(err == "<no error>");
    } else {
        BOOST_TEST(err == ".process.apparmorProfile: AppArmor is not enabled on this host "
                          "(profile \"slit-profile\" cannot be applied)");
    }
    // exec's process.json has its fields at the top level.
    if (!os::apparmor_enabled())
        BOOST_TEST(error_of([&] { os::check_process_labels(p, ""); }).rfind(".apparmorProfile: ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(selinux_labels_refused) {
    spec::Process p;
    p.selinux_label = "system_u:system_r:container_t:s0";
    const std::string why = os::selinux_enabled() ? "SELinux labels are not supported by sandlock-runc"
                                                  : "SELinux is not enabled on this host";
    BOOST_TEST(error_of([&] { os::check_process_labels(p, ".process"); }) == ".process.selinuxLabel: " + why);
    spec::Linux l;
    l.mount_label = "system_u:object_r:container_file_t:s0";
    BOOST_TEST(error_of([&] { os::check_mount_label(l); }).rfind(".linux.mountLabel: ", 0) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

#include "runtime/linux/lsm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::os {

bool apparmor_enabled() {
    if (!fs::is_dir("/sys/kernel/security/apparmor")) return false;
    auto enabled = fs::try_read_file("/sys/module/apparmor/parameters/enabled");
    return enabled && !enabled->empty() && enabled->front() == 'Y';
}

bool selinux_enabled() { return fs::exists("/sys/fs/selinux/enforce"); }

void check_process_labels(const spec::Process& process, const std::string& path) {
    if (!process.apparmor_profile.empty() && !apparmor_enabled())
        throw Error(path + ".apparmorProfile: AppArmor is not enabled on this host (profile \"" +
                    process.apparmor_profile + "\" cannot be applied)");
    if (!process.selinux_label.empty())
        throw Error(path + ".selinuxLabel: " +
                    (selinux_enabled() ? std::string("SELinux labels are not supported by sandlock-runc")
                                       : std::string("SELinux is not enabled on this host")));
}

void check_mount_label(const spec::Linux& linux_cfg) {
    if (linux_cfg.mount_label.empty()) return;
    throw Error(std::string(".linux.mountLabel: ") +
                (selinux_enabled() ? "SELinux mount labels are not supported by sandlock-runc"
                                   : "SELinux is not enabled on this host"));
}

void apply_apparmor_profile(const std::string& profile) {
    if (profile.empty()) return;
    // The kernel's own interface first (5.8+); the shared attr file on older kernels.
    UniqueFd fd(::open("/proc/thread-self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC));
    if (!fd) fd = UniqueFd(::open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno("apparmor profile \"" + profile + "\": open /proc/thread-self/attr/exec");
    const std::string cmd = "exec " + profile;
    if (::write(fd.get(), cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size()))
        throw_errno("apparmor profile \"" + profile + "\"");
}

}  // namespace sandlock::os

#include "runtime/shim/container_hosts.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/egress/hosts.hpp"
#include "runtime/linux/mounts.hpp"
#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/process.hpp"

namespace sandlock::shim {

namespace {

// What the container's /etc/hosts holds now, read through its root.
std::string read_container_hosts(pid_t pid) {
    const std::string root_path = "/proc/" + std::to_string(pid) + "/root";
    UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open " + root_path);
    return egress::read_hosts_in_root(root.get());
}

}  // namespace

std::string update_container_hosts(const std::string& state_dir, unsigned version, int pidfd, pid_t pid,
                            const egress::ResolvedPolicy& policy) {
    if (!proc::identify(pidfd, pid)) throw Error("the container's init is gone");
    const std::string content = egress::hosts_with_policy(read_container_hosts(pid), policy);
    const std::string path = fs::join(state_dir, "hosts." + std::to_string(version));
    fs::write_file_atomic(path, content, 0644);
    try {
        os::mount_file_over_in(pidfd, path, "/etc/hosts");
    } catch (const Error& e) {
        throw Error(std::string("update the container's /etc/hosts: ") + e.what());
    }
    return path;
}

}  // namespace sandlock::shim

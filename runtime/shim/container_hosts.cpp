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

constexpr off_t kMaxHostsSize = 1 << 20;

// What the container's /etc/hosts holds now, read through its root.
std::string read_container_hosts(pid_t pid) {
    const std::string root_path = "/proc/" + std::to_string(pid) + "/root";
    UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open " + root_path);
    // O_NONBLOCK: a FIFO put there by the workload must not hang the shim.
    UniqueFd f = os::try_open_in_root(root.get(), "/etc/hosts", O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (!f) {
        if (errno == ENOENT) return "";
        throw_errno("open the container's /etc/hosts");
    }
    struct stat st{};
    if (::fstat(f.get(), &st) != 0) throw_errno("stat the container's /etc/hosts");
    if (!S_ISREG(st.st_mode)) throw Error("the container's /etc/hosts is not a regular file");
    if (st.st_size > kMaxHostsSize) throw Error("the container's /etc/hosts is larger than 1 MiB");
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::read(f.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read the container's /etc/hosts");
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
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

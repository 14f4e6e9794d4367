#include "runtime/linux/devices.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::os {
namespace {

spec::Device char_device(const char* path, int64_t major, int64_t minor) {
    spec::Device d;
    d.type = "c";
    d.path = path;
    d.major = major;
    d.minor = minor;
    d.file_mode = 0666;
    d.uid = 0;
    d.gid = 0;
    return d;
}

mode_t node_type(const spec::Device& dev) {
    if (dev.type == "c" || dev.type == "u") return S_IFCHR;
    if (dev.type == "b") return S_IFBLK;
    if (dev.type == "p") return S_IFIFO;
    throw Error("device " + dev.path + ": unknown type \"" + dev.type + "\"");
}

// Splits "/dev/x/y" into parent "/dev/x" and name "y".
std::pair<std::string, std::string> split_parent(const std::string& path) {
    std::string clean = clean_path(path);
    size_t slash = clean.rfind('/');
    std::string parent = slash == 0 ? "/" : clean.substr(0, slash);
    return {parent, clean.substr(slash + 1)};
}

void bind_host_device(int root_fd, const spec::Device& dev) {
    const std::string dest = clean_path(dev.path);
    UniqueFd src(::open(dest.c_str(), O_PATH | O_CLOEXEC));
    if (!src) throw_errno("device " + dest + ": open host node");
    UniqueFd target = create_file_in_root(root_fd, dest, 0000);
    std::string from = proc_fd_path(src.get()), to = proc_fd_path(target.get());
    if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0)
        throw_errno("device " + dest + ": bind host node");
}

void make_symlink(int dir_fd, const char* target, const char* name) {
    if (::symlinkat(target, dir_fd, name) != 0 && errno != EEXIST)
        throw_errno(std::string("symlink /dev/") + name);
}

void setup_dev_symlinks(int dev_fd) {
    make_symlink(dev_fd, "/proc/self/fd", "fd");
    make_symlink(dev_fd, "/proc/self/fd/0", "stdin");
    make_symlink(dev_fd, "/proc/self/fd/1", "stdout");
    make_symlink(dev_fd, "/proc/self/fd/2", "stderr");
    if (::access("/proc/kcore", F_OK) == 0) make_symlink(dev_fd, "/proc/kcore", "core");
}

// The container's ptys come from its own devpts instance (newinstance): /dev/ptmx must
// lead there, not to a host node.
void setup_ptmx(int dev_fd) {
    if (::unlinkat(dev_fd, "ptmx", 0) != 0 && errno != ENOENT) throw_errno("remove /dev/ptmx");
    make_symlink(dev_fd, "pts/ptmx", "ptmx");
}

}  // namespace

std::vector<spec::Device> default_devices() {
    return {
        char_device("/dev/null", 1, 3),    char_device("/dev/zero", 1, 5),
        char_device("/dev/full", 1, 7),    char_device("/dev/random", 1, 8),
        char_device("/dev/urandom", 1, 9), char_device("/dev/tty", 5, 0),
    };
}

bool needs_dev_setup(const spec::Config& cfg) {
    for (const auto& m : cfg.mounts) {
        if (clean_path(m.destination) != "/dev") continue;
        if (m.type == "bind") return false;
        for (const auto& o : m.options)
            if (o == "bind" || o == "rbind") return false;
    }
    return true;
}

void create_device(int root_fd, const spec::Device& dev, bool bind_from_host) {
    const mode_t type = node_type(dev);
    const mode_t perm = dev.file_mode ? (*dev.file_mode & 07777) : 0666;
    const auto [parent_path, name] = split_parent(dev.path);
    if (name.empty() || name == "..") throw Error("device " + dev.path + ": bad path");
    if (bind_from_host && type != S_IFIFO) {
        bind_host_device(root_fd, dev);
        return;
    }
    UniqueFd parent = mkdir_all_in_root(root_fd, parent_path);
    dev_t rdev = makedev(static_cast<unsigned>(dev.major), static_cast<unsigned>(dev.minor));
    if (::mknodat(parent.get(), name.c_str(), type | perm, type == S_IFIFO ? 0 : rdev) != 0) {
        if (errno == EEXIST) return;  // the image or a mount already provides it
        if (errno == EPERM && type != S_IFIFO) {
            bind_host_device(root_fd, dev);
            return;
        }
        throw_errno("mknod " + clean_path(dev.path));
    }
    // mknod applied the umask; the owner comes from the config.
    if (::fchmodat(parent.get(), name.c_str(), perm, 0) != 0)
        throw_errno("chmod " + clean_path(dev.path));
    if (::fchownat(parent.get(), name.c_str(), dev.uid.value_or(0), dev.gid.value_or(0),
                   AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("chown " + clean_path(dev.path));
}

void setup_dev(int root_fd, const spec::Config& cfg, bool user_ns) {
    UniqueFd dev_fd = mkdir_all_in_root(root_fd, "/dev");
    for (const auto& d : default_devices()) {
        bool overridden = false;
        for (const auto& c : cfg.linux.devices)
            if (clean_path(c.path) == d.path) overridden = true;
        if (!overridden) create_device(root_fd, d, user_ns);
    }
    for (const auto& d : cfg.linux.devices) create_device(root_fd, d, user_ns);
    setup_dev_symlinks(dev_fd.get());
    setup_ptmx(dev_fd.get());
}

void mount_console(const std::string& slave_path) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open /");
    UniqueFd target = create_file_in_root(root.get(), "/dev/console", 0000);
    UniqueFd slave(::open(slave_path.c_str(), O_PATH | O_CLOEXEC));
    if (!slave) throw_errno("open " + slave_path);
    std::string from = proc_fd_path(slave.get()), to = proc_fd_path(target.get());
    if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0)
        throw_errno("mount " + slave_path + " on /dev/console");
}

}  // namespace sandlock::os

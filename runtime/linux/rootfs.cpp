#include "runtime/linux/rootfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "runtime/linux/devices.hpp"
#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::os {
namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

std::string at(const std::string& parent, size_t i) {
    return parent + "[" + std::to_string(i) + "]";
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool octal = true;
            for (size_t k = 1; k <= 3; ++k) {
                if (i + k >= s.size() || s[i + k] < '0' || s[i + k] > '7') {
                    octal = false;
                    break;
                }
                v = v * 8 + (s[i + k] - '0');
            }
            if (octal) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

bool path_is_under(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                           path[dir.size()] == '/');
}

// pivot_root and MS_MOVE refuse a rootfs whose parent mount is shared; with a
// non-recursive rootfsPropagation ("shared", "slave", ...) that is what it may still be.
// The parent becomes a slave, not private: the rootfs bound from it then keeps the host
// mount as its master, which is what "slave" asks for (the others change it in
// finish_rootfs).
void make_rootfs_parent_unshared(const std::string& rootfs) {
    std::istringstream in(fs::read_file("/proc/self/mountinfo"));
    std::string line, best;
    bool best_shared = false;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, devno, root, mount_point, options, field;
        fields >> id >> parent >> devno >> root >> mount_point >> options;
        bool shared = false;
        while (fields >> field && field != "-")
            if (field.rfind("shared:", 0) == 0) shared = true;
        std::string mp = unescape_mountinfo(mount_point);
        if (path_is_under(rootfs, mp) && mp.size() >= best.size()) {
            best = mp;
            best_shared = shared;
        }
    }
    if (best_shared && ::mount(nullptr, best.c_str(), nullptr, MS_SLAVE, nullptr) != 0)
        throw_errno("make " + best + " a slave");
}

void set_root_propagation(unsigned long flags, const std::string& name) {
    if (::mount(nullptr, "/", nullptr, flags, nullptr) != 0)
        throw_errno("make / " + name);
}

void pivot_into(int newroot) {
    UniqueFd oldroot(::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!oldroot) throw_errno("open /");
    if (::fchdir(newroot) != 0) throw_errno("chdir rootfs");
    // pivot_root(".", "."): the old root ends up stacked on top of the new one, at "/",
    // with no directory needed inside the rootfs to hold it.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) throw_errno("pivot_root");
    if (::fchdir(oldroot.get()) != 0) throw_errno("chdir old root");
    // Detaching the old root must not propagate into the host's mount namespace.
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
        throw_errno("make old root rslave");
    if (::umount2(".", MNT_DETACH) != 0) throw_errno("unmount old root");
}

void move_into(int newroot, const std::string& rootfs) {
    if (::fchdir(newroot) != 0) throw_errno("chdir " + rootfs);
    if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0)
        throw_errno("move " + rootfs + " to /");
    if (::chroot(".") != 0) throw_errno("chroot " + rootfs);
}

UniqueFd open_root() {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open /");
    return root;
}

// After pivot, /proc may be missing (a container without procfs): then the plain path
// is used, which is safe now that "/" is the rootfs.
std::string mount_name(int fd, const std::string& path) {
    return ::access("/proc/self/fd", F_OK) == 0 ? proc_fd_path(fd) : path;
}

// A /dev tmpfs asked "ro" was mounted rw so its nodes could be created.
void remount_dev_readonly(const spec::Config& cfg) {
    for (const auto& m : cfg.mounts) {
        if (clean_path(m.destination) != "/dev" || m.type == "cgroup") continue;
        MountOptions o = parse_mount_options(m.options);
        if (o.is_bind() || m.type == "bind" || !(o.flags & MS_RDONLY)) continue;
        UniqueFd root = open_root();
        UniqueFd dev = open_in_root(root.get(), "/dev", O_PATH | O_DIRECTORY);
        bind_remount(mount_name(dev.get(), "/dev"), o.flags | MS_RDONLY, "remount /dev read-only");
    }
}

void make_root_readonly() {
    unsigned long keep = mount_flags_of("/") & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    bind_remount("/", MS_RDONLY | keep, "remount / read-only");
}

}  // namespace

void validate_mounts(const spec::Config& cfg) {
    const auto& prop = cfg.linux.rootfs_propagation;
    if (!prop.empty() && !is_propagation_name(prop))
        throw Error(".linux.rootfsPropagation: unknown propagation " + q(prop));
    for (size_t i = 0; i < cfg.mounts.size(); ++i) {
        const auto& m = cfg.mounts[i];
        const std::string path = at(".mounts", i);
        if (m.destination.empty() || m.destination.front() != '/')
            throw Error(path + ".destination: mount destination " + q(m.destination) +
                        " is not absolute");
        if (!m.uid_mappings.empty() || !m.gid_mappings.empty())
            throw Error(path + (m.uid_mappings.empty() ? ".gidMappings" : ".uidMappings") +
                        ": idmapped mounts are not supported");
        bool bind = m.type == "bind";
        for (size_t j = 0; j < m.options.size(); ++j) {
            const auto& o = m.options[j];
            if (o == "idmap" || o == "ridmap")
                throw Error(at(path + ".options", j) + ": idmapped mounts are not supported");
            if (o == "bind" || o == "rbind") bind = true;
        }
        for (size_t j = 0; j < m.options.size(); ++j)
            if (m.options[j] == "tmpcopyup" && (bind || m.type != "tmpfs"))
                throw Error(at(path + ".options", j) + ": tmpcopyup needs a tmpfs mount");
        if (bind && m.source.empty()) throw Error(path + ".source: a bind mount needs a source");
    }
    for (size_t i = 0; i < cfg.linux.masked_paths.size(); ++i)
        if (cfg.linux.masked_paths[i].empty() || cfg.linux.masked_paths[i].front() != '/')
            throw Error(at(".linux.maskedPaths", i) + ": must be an absolute path");
    for (size_t i = 0; i < cfg.linux.readonly_paths.size(); ++i)
        if (cfg.linux.readonly_paths[i].empty() || cfg.linux.readonly_paths[i].front() != '/')
            throw Error(at(".linux.readonlyPaths", i) + ": must be an absolute path");
    for (size_t i = 0; i < cfg.linux.devices.size(); ++i) {
        const auto& d = cfg.linux.devices[i];
        if (d.path.empty() || d.path.front() != '/')
            throw Error(at(".linux.devices", i) + ".path: must be an absolute path");
        if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
            throw Error(at(".linux.devices", i) + ".type: unknown device type " + q(d.type));
    }
}

void prepare_rootfs(const spec::Config& cfg, const std::string& rootfs_abs, const RootfsOptions& opt) {
    const std::string& prop_name = cfg.linux.rootfs_propagation;
    unsigned long prop = parse_propagation(prop_name);
    // An unbindable / could not be bound onto itself below: it becomes unbindable in
    // finish_rootfs, once it is the container's root.
    if (prop & MS_UNBINDABLE) prop = 0;
    set_root_propagation(prop ? prop : (MS_SLAVE | MS_REC), prop ? prop_name : "rslave");

    make_rootfs_parent_unshared(rootfs_abs);
    // pivot_root needs the rootfs to be a mount point.
    if (::mount(rootfs_abs.c_str(), rootfs_abs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        throw_errno("bind rootfs " + rootfs_abs);
    UniqueFd root(::open(rootfs_abs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open rootfs " + rootfs_abs);

    for (const auto& m : cfg.mounts) mount_entry(root.get(), m, opt);
    if (needs_dev_setup(cfg)) setup_dev(root.get(), cfg, opt.user_ns);
    // runc creates the working directory (as root) when the image lacks it.
    if (cfg.process && !cfg.process->cwd.empty() && cfg.process->cwd.front() == '/')
        mkdir_all_in_root(root.get(), cfg.process->cwd);
}

void chroot_into(const spec::Config& cfg, const std::string& rootfs_abs) {
    UniqueFd root(::open(rootfs_abs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("open rootfs " + rootfs_abs);
    // runc creates the working directory (as root) when the image lacks it.
    if (cfg.process && !cfg.process->cwd.empty() && cfg.process->cwd.front() == '/')
        mkdir_all_in_root(root.get(), cfg.process->cwd);
    if (::fchdir(root.get()) != 0) throw_errno("chdir " + rootfs_abs);
    if (::chroot(".") != 0) throw_errno("chroot " + rootfs_abs);
    if (::chdir("/") != 0) throw_errno("chdir /");
}

void enter_rootfs(const std::string& rootfs_abs, bool no_pivot) {
    UniqueFd newroot(::open(rootfs_abs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!newroot) throw_errno("open rootfs " + rootfs_abs);
    if (no_pivot)
        move_into(newroot.get(), rootfs_abs);
    else
        pivot_into(newroot.get());
    if (::chdir("/") != 0) throw_errno("chdir /");
}

void make_path_readonly(const std::string& path) {
    UniqueFd root = open_root();
    UniqueFd fd = try_open_in_root(root.get(), path, O_PATH);
    if (!fd) {
        if (errno == ENOENT) return;
        throw_errno("readonly path " + path);
    }
    std::string name = mount_name(fd.get(), path);
    if (::mount(name.c_str(), name.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        throw_errno("bind readonly path " + path);
    UniqueFd mounted = open_in_root(root.get(), path, O_PATH);
    std::string target = mount_name(mounted.get(), path);
    unsigned long keep = mount_flags_of(target) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    bind_remount(target, MS_RDONLY | keep, "readonly path " + path);
}

void mask_path(const std::string& path) {
    UniqueFd root = open_root();
    UniqueFd fd = try_open_in_root(root.get(), path, O_PATH);
    if (!fd) {
        if (errno == ENOENT) return;
        throw_errno("mask path " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("mask path " + path);
    std::string target = mount_name(fd.get(), path);
    int rc = S_ISDIR(st.st_mode)
                 ? ::mount("tmpfs", target.c_str(), "tmpfs", MS_RDONLY, nullptr)
                 : ::mount("/dev/null", target.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) throw_errno("mask path " + path);
}

void finish_rootfs(const spec::Config& cfg) {
    unsigned long prop = parse_propagation(cfg.linux.rootfs_propagation);
    if (prop) set_root_propagation(prop, cfg.linux.rootfs_propagation);
    for (const auto& p : cfg.linux.readonly_paths) make_path_readonly(p);
    for (const auto& p : cfg.linux.masked_paths) mask_path(p);
    remount_dev_readonly(cfg);
    if (cfg.root.readonly) make_root_readonly();
}

}  // namespace sandlock::os

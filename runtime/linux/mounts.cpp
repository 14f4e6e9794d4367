#include "runtime/linux/mounts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <thread>
#include <string_view>

#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::os {
namespace {

// ---- option tables -------------------------------------------------------------------

struct FlagOption {
    std::string_view name;
    bool clear;  // the option turns the flag off ("rw" clears MS_RDONLY)
    unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"async", true, MS_SYNCHRONOUS},    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},           {"defaults", false, 0},
    {"dev", true, MS_NODEV},            {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},     {"exec", true, MS_NOEXEC},
    {"iversion", false, MS_I_VERSION},  {"lazytime", false, MS_LAZYTIME},
    {"loud", true, MS_SILENT},          {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},     {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME}, {"noexec", false, MS_NOEXEC},
    {"noiversion", true, MS_I_VERSION}, {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},      {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME}, {"nosuid", false, MS_NOSUID},
    {"nosymfollow", false, MS_NOSYMFOLLOW}, {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},   {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},           {"rw", true, MS_RDONLY},
    {"silent", false, MS_SILENT},       {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},          {"symfollow", true, MS_NOSYMFOLLOW},
    {"sync", false, MS_SYNCHRONOUS},
};

struct PropagationOption {
    std::string_view name;
    unsigned long flag;
};

constexpr PropagationOption kPropagation[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

// Recursive variants, applied to the whole mount tree with mount_setattr(2).
struct AttrOption {
    std::string_view name;
    unsigned long long set;
    unsigned long long clr;
};

constexpr AttrOption kAttrOptions[] = {
    {"rro", MOUNT_ATTR_RDONLY, 0},
    {"rrw", 0, MOUNT_ATTR_RDONLY},
    {"rnosuid", MOUNT_ATTR_NOSUID, 0},
    {"rsuid", 0, MOUNT_ATTR_NOSUID},
    {"rnodev", MOUNT_ATTR_NODEV, 0},
    {"rdev", 0, MOUNT_ATTR_NODEV},
    {"rnoexec", MOUNT_ATTR_NOEXEC, 0},
    {"rexec", 0, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", MOUNT_ATTR_NODIRATIME, 0},
    {"rdiratime", 0, MOUNT_ATTR_NODIRATIME},
    {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0},
    {"rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
    // The atime mode is one field: the kernel wants all of __ATIME cleared to set it.
    {"rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"ratime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"rnostrictatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
    {"rnorelatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
};

// statvfs's ST_NOSYMFOLLOW (linux/statfs.h), missing from glibc 2.36's headers.
constexpr unsigned long kStNoSymfollow = 0x2000;

constexpr unsigned long kAtimeFlags = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;

// Paths under /proc that may be covered (lxcfs emulates them), as runc allows.
constexpr std::string_view kProcAllowed[] = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",  "/proc/stat",
    "/proc/swaps",   "/proc/uptime",    "/proc/loadavg",  "/proc/slabinfo",
    "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
};

// ---- helpers ----------------------------------------------------------------------

std::string q(const std::string& s) { return "\"" + s + "\""; }

const char* opt_cstr(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// mount(2) onto the object behind target_fd; errors say what was mounted where.
void mount_on_fd(const std::string& source, int target_fd, const std::string& type,
                 unsigned long flags, const std::string& data, const std::string& shown) {
    std::string target = proc_fd_path(target_fd);
    if (::mount(opt_cstr(source), target.c_str(), opt_cstr(type), flags, opt_cstr(data)) != 0)
        throw_errno(shown);
}

// After a mount, the fd we mounted onto still names the covered directory; the new
// mount is only reachable by walking the path again (still in-root).
UniqueFd reopen_target(int root_fd, const std::string& dest) {
    return open_in_root(root_fd, dest, O_PATH);
}

bool has_prefix_dir(const std::string& path, const std::string& dir) {
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
           path[dir.size()] == '/';
}

bool statfs_type_is(const std::string& path, long magic) {
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

bool is_char_device(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// Nothing may cover /proc or its entries (a bind over /proc/self/... would defeat
// the masks), except a real procfs on /proc, lxcfs-style files and /dev/null masks.
void check_proc_destination(const std::string& dest, const spec::Mount& m,
                            const MountOptions& o, const std::string& source) {
    if (dest == "/proc") {
        if (m.type == "proc") return;
        if (o.is_bind() && statfs_type_is(source, PROC_SUPER_MAGIC)) return;
        throw Error(q(source) + " cannot be mounted to " + q(dest) +
                    " because it is not of type proc");
    }
    if (!has_prefix_dir(dest, "/proc")) return;
    for (auto allowed : kProcAllowed)
        if (dest == allowed) return;
    if (o.is_bind() && source == "/dev/null" && is_char_device(source)) return;
    throw Error(q(dest) + " cannot be mounted because it is inside /proc");
}

std::string bind_source(const spec::Mount& m, const RootfsOptions& opt) {
    if (m.source.empty()) throw Error("mount " + m.destination + ": bind mount without a source");
    if (m.source.front() == '/' || opt.bundle_dir.empty()) return m.source;
    return opt.bundle_dir + "/" + m.source;
}

bool host_is_cgroup2_only() { return statfs_type_is("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC); }

void apply_remount_if_needed(int root_fd, const std::string& dest, unsigned long flags,
                             const std::string& shown) {
    if (remount_flags(flags) == 0) return;
    UniqueFd fd = reopen_target(root_fd, dest);
    bind_remount(proc_fd_path(fd.get()), flags, shown);
}

// Binds `source` (a host path) onto dest inside the root, then applies the per-mount
// flags with a remount: a bind ignores them on the first call.
void bind_onto(int root_fd, const std::string& source, const std::string& dest,
               unsigned long flags, const std::string& shown) {
    UniqueFd src(::open(source.c_str(), O_PATH | O_CLOEXEC));
    if (!src) throw_errno(shown);
    struct stat st {};
    if (::fstat(src.get(), &st) != 0) throw_errno(shown);
    UniqueFd target = S_ISDIR(st.st_mode) ? mkdir_all_in_root(root_fd, dest)
                                          : create_file_in_root(root_fd, dest);
    mount_on_fd(proc_fd_path(src.get()), target.get(), "", MS_BIND | (flags & MS_REC), "", shown);
    apply_remount_if_needed(root_fd, dest, flags, shown);
}

// ---- tmpcopyup ----------------------------------------------------------------------

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

void copy_file_data(int src_dir, int dst_dir, const std::string& name, mode_t mode) {
    UniqueFd in(::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) throw_errno("tmpcopyup: open " + name);
    UniqueFd out(::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          mode & 0777));
    if (!out) throw_errno("tmpcopyup: create " + name);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("tmpcopyup: read " + name);
        if (n == 0) return;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(out.get(), buf + off, static_cast<size_t>(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) throw_errno("tmpcopyup: write " + name);
            off += w;
        }
    }
}

// Owner, mode and times of the copy follow the original; ownership may be refused in
// a user namespace (unmapped ids), which is not worth failing the container for.
void copy_metadata(int dst_dir, const std::string& name, const struct stat& st) {
    (void)::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
    if (!S_ISLNK(st.st_mode) &&
        ::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, 0) != 0)
        throw_errno("tmpcopyup: chmod " + name);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    (void)::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

void copy_tree(int src_dir, int dst_dir) {
    UniqueFd listing(::openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!listing) throw_errno("tmpcopyup: open directory");
    std::unique_ptr<DIR, DirCloser> dir(::fdopendir(listing.get()));
    if (!dir) throw_errno("tmpcopyup: read directory");
    listing.release();  // owned by dir now
    while (struct dirent* e = ::readdir(dir.get())) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            throw_errno("tmpcopyup: stat " + name);
        if (S_ISDIR(st.st_mode)) {
            if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) throw_errno("tmpcopyup: mkdir " + name);
            UniqueFd s(::openat(src_dir, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd d(::openat(dst_dir, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!s || !d) throw_errno("tmpcopyup: open " + name);
            copy_tree(s.get(), d.get());
        } else if (S_ISREG(st.st_mode)) {
            copy_file_data(src_dir, dst_dir, name, st.st_mode);
        } else if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
            if (n < 0) throw_errno("tmpcopyup: readlink " + name);
            target.resize(static_cast<size_t>(n));
            if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
                throw_errno("tmpcopyup: symlink " + name);
        } else if (S_ISSOCK(st.st_mode)) {
            continue;  // a socket is useless without its listener
        } else if (::mknodat(dst_dir, name.c_str(), st.st_mode, st.st_rdev) != 0) {
            throw_errno("tmpcopyup: mknod " + name);
        }
        copy_metadata(dst_dir, name, st);
    }
}

// The new tmpfs root takes the original directory's owner, and its mode unless the
// mount options set one.
void copy_root_metadata(int src_dir, int dst_dir, const std::string& data) {
    struct stat st {};
    if (::fstat(src_dir, &st) != 0) throw_errno("tmpcopyup: stat");
    std::string self = proc_fd_path(dst_dir);
    (void)::chown(self.c_str(), st.st_uid, st.st_gid);
    bool mode_given = data.rfind("mode=", 0) == 0 || data.find(",mode=") != std::string::npos;
    if (!mode_given && ::chmod(self.c_str(), st.st_mode & 07777) != 0) throw_errno("tmpcopyup: chmod");
}

// ---- mount kinds ---------------------------------------------------------------------

void mount_bind_entry(int root_fd, const spec::Mount& m, const MountOptions& o,
                      const RootfsOptions& opt, const std::string& dest) {
    std::string source = bind_source(m, opt);
    bind_onto(root_fd, source, dest, o.flags, "mount " + source + " on " + dest);
}

// Where a filesystem that cannot be mounted here (EPERM in a user namespace without
// its own net/ipc/cgroup namespace) can be bound from instead; "" when none.
std::string fallback_source(const std::string& type, const RootfsOptions& opt, int err) {
    if (err != EPERM && err != EBUSY) return "";
    if (type == "cgroup2") return opt.cgroup2_path.empty() ? "/sys/fs/cgroup" : opt.cgroup2_path;
    if (!opt.user_ns) return "";
    if (type == "sysfs") return "/sys";
    if (type == "mqueue") return "/dev/mqueue";
    return "";
}

void mount_filesystem(int root_fd, const spec::Mount& m, const std::string& type,
                      const MountOptions& o, const RootfsOptions& opt, const std::string& dest) {
    const std::string shown = "mount " + type + " on " + dest;
    UniqueFd target = mkdir_all_in_root(root_fd, dest);
    unsigned long flags = o.flags & ~(MS_BIND | MS_REC);
    // Content goes in before the mount turns read-only; /dev gets its nodes first
    // and finish_rootfs() makes it read-only.
    const bool late_ro = (flags & MS_RDONLY) && (o.tmpcopyup || dest == "/dev");
    if (late_ro) flags &= ~MS_RDONLY;
    if (o.tmpcopyup && type != "tmpfs") throw Error(shown + ": tmpcopyup needs a tmpfs");

    UniqueFd original;
    if (o.tmpcopyup) {
        original.reset(::openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!original) throw_errno(shown + ": open");
    }
    const std::string source = m.source.empty() ? type : m.source;
    std::string fd_path = proc_fd_path(target.get());
    if (::mount(source.c_str(), fd_path.c_str(), type.c_str(), flags, opt_cstr(o.data)) != 0) {
        int err = errno;
        std::string fallback = fallback_source(type, opt, err);
        if (fallback.empty()) throw_errno(shown, err);
        bind_onto(root_fd, fallback, dest, o.flags | MS_BIND | MS_REC, shown);
        return;
    }
    if (o.tmpcopyup) {
        UniqueFd fresh = open_in_root(root_fd, dest, O_PATH | O_DIRECTORY);
        copy_tree(original.get(), fresh.get());
        copy_root_metadata(original.get(), fresh.get(), o.data);
        if (late_ro && dest != "/dev") bind_remount(proc_fd_path(fresh.get()), flags | MS_RDONLY, shown);
    }
}

void link_combined_controllers(int dir_fd, const std::string& name) {
    if (name.find(',') == std::string::npos) return;
    size_t start = 0;
    while (start <= name.size()) {
        size_t comma = name.find(',', start);
        if (comma == std::string::npos) comma = name.size();
        std::string part = name.substr(start, comma - start);
        if (!part.empty() && ::symlinkat(name.c_str(), dir_fd, part.c_str()) != 0 && errno != EEXIST)
            throw_errno("symlink cgroup " + part);
        start = comma + 1;
    }
}

// v2-only host: a cgroup2 mount. v1/hybrid: a tmpfs with one bind per hierarchy of
// the container's cgroup, read-only when the entry asks for it.
void mount_cgroup(int root_fd, const spec::Mount& m, const MountOptions& o,
                  const RootfsOptions& opt, const std::string& dest) {
    if (host_is_cgroup2_only()) {
        mount_filesystem(root_fd, m, "cgroup2", o, opt, dest);
        return;
    }
    const std::string shown = "mount cgroup on " + dest;
    UniqueFd target = mkdir_all_in_root(root_fd, dest);
    unsigned long tmpfs_flags = o.flags & ~(MS_RDONLY | MS_BIND | MS_REC);
    mount_on_fd("tmpfs", target.get(), "tmpfs", tmpfs_flags, "mode=755", shown);

    const unsigned long bind_flags = (o.flags & ~(MS_BIND | MS_REC)) | MS_BIND | MS_REC;
    for (const auto& b : opt.cgroup_binds) {
        if (b.name.empty() || b.name.find('/') != std::string::npos || b.name == "..")
            throw Error(shown + ": bad cgroup hierarchy name " + q(b.name));
        bind_onto(root_fd, b.host_path, dest + "/" + b.name, bind_flags,
                  "mount " + b.host_path + " on " + dest + "/" + b.name);
        UniqueFd dir = open_in_root(root_fd, dest, O_PATH | O_DIRECTORY);
        link_combined_controllers(dir.get(), b.name);
    }
    if (o.flags & MS_RDONLY) {
        UniqueFd fd = reopen_target(root_fd, dest);
        bind_remount(proc_fd_path(fd.get()), tmpfs_flags | MS_RDONLY, shown);
    }
}

void apply_recursive_attrs(int root_fd, const std::string& dest, const MountOptions& o) {
    if (o.attr_set == 0 && o.attr_clr == 0) return;
    UniqueFd fd = reopen_target(root_fd, dest);
    struct mount_attr attr {};
    attr.attr_set = o.attr_set;
    attr.attr_clr = o.attr_clr;
    if (::mount_setattr(fd.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
        throw_errno("set recursive mount attributes on " + dest);
}

void apply_propagation(int root_fd, const std::string& dest, const MountOptions& o) {
    for (unsigned long p : o.propagation) {
        UniqueFd fd = reopen_target(root_fd, dest);
        mount_on_fd("", fd.get(), "", p, "", "change propagation of " + dest);
    }
}

}  // namespace

bool MountOptions::is_bind() const { return (flags & MS_BIND) != 0; }

bool is_propagation_name(const std::string& value) {
    for (const auto& p : kPropagation)
        if (p.name == value) return true;
    return false;
}

unsigned long parse_propagation(const std::string& value) {
    if (value.empty()) return 0;
    for (const auto& p : kPropagation)
        if (p.name == value) return p.flag;
    throw Error("unknown propagation " + q(value));
}

MountOptions parse_mount_options(const std::vector<std::string>& options) {
    MountOptions o;
    std::string data;
    for (const auto& opt : options) {
        bool known = false;
        for (const auto& f : kFlagOptions) {
            if (f.name != opt) continue;
            if (f.clear) {
                o.flags &= ~f.flag;
                o.cleared |= f.flag;
            } else {
                o.flags |= f.flag;
                o.cleared &= ~f.flag;
            }
            known = true;
            break;
        }
        if (known) continue;
        if (is_propagation_name(opt)) {
            o.propagation.push_back(parse_propagation(opt));
            continue;
        }
        for (const auto& a : kAttrOptions) {
            if (a.name != opt) continue;
            o.attr_set = (o.attr_set & ~a.clr) | a.set;
            o.attr_clr = (o.attr_clr & ~a.set) | a.clr;
            known = true;
            break;
        }
        if (known) continue;
        if (opt == "tmpcopyup") {
            o.tmpcopyup = true;
            continue;
        }
        if (opt == "idmap" || opt == "ridmap")
            throw Error("mount option " + q(opt) + ": idmapped mounts are not supported");
        if (!data.empty()) data += ",";
        data += opt;
    }
    o.data = std::move(data);
    return o;
}

unsigned long remount_flags(unsigned long flags) {
    return flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | MS_NOSYMFOLLOW |
                    kAtimeFlags);
}

unsigned long mount_flags_of(const std::string& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) throw_errno("statvfs " + path);
    struct {
        unsigned long st_flag, ms_flag;
    } const map[] = {
        {ST_RDONLY, MS_RDONLY},         {ST_NOSUID, MS_NOSUID},     {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC},         {ST_NOATIME, MS_NOATIME},   {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},     {kStNoSymfollow, MS_NOSYMFOLLOW},
    };
    unsigned long flags = 0;
    for (const auto& e : map)
        if (st.f_flag & e.st_flag) flags |= e.ms_flag;
    return flags;
}

void bind_remount(const std::string& target, unsigned long flags, const std::string& shown) {
    unsigned long want = MS_REMOUNT | MS_BIND | remount_flags(flags);
    if (::mount(nullptr, target.c_str(), nullptr, want, nullptr) == 0) return;
    if (errno != EPERM) throw_errno(shown + ": remount");
    // Flags locked by a more privileged mount namespace must be repeated.
    unsigned long current = mount_flags_of(target);
    unsigned long keep = current & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME);
    if ((want & kAtimeFlags) == 0 || (current & kAtimeFlags) != 0) {
        want &= ~kAtimeFlags;
        keep |= current & kAtimeFlags;
    }
    if (::mount(nullptr, target.c_str(), nullptr, want | keep, nullptr) != 0)
        throw_errno(shown + ": remount");
}

void mount_entry(int root_fd, const spec::Mount& m, const RootfsOptions& opt) {
    if (m.destination.empty() || m.destination.front() != '/')
        throw Error("mount destination " + q(m.destination) + " is not absolute");
    const std::string dest = clean_path(m.destination);
    MountOptions o;
    try {
        o = parse_mount_options(m.options);
    } catch (const Error& e) {
        throw Error("mount " + dest + ": " + e.what());
    }
    const bool bind = o.is_bind() || m.type == "bind";
    if (bind) o.flags |= MS_BIND;
    check_proc_destination(dest, m, o, bind ? bind_source(m, opt) : m.source);

    if (bind)
        mount_bind_entry(root_fd, m, o, opt, dest);
    else if (m.type == "cgroup")
        mount_cgroup(root_fd, m, o, opt, dest);
    else
        mount_filesystem(root_fd, m, m.type, o, opt, dest);

    apply_recursive_attrs(root_fd, dest, o);
    apply_propagation(root_fd, dest, o);
}

}  // namespace sandlock::os

namespace sandlock::os {

std::vector<std::string> known_mount_options() {
    std::vector<std::string> names;
    for (const auto& f : kFlagOptions) names.emplace_back(f.name);
    for (const auto& p : kPropagation) names.emplace_back(p.name);
    for (const auto& a : kAttrOptions) names.emplace_back(a.name);
    names.emplace_back("tmpcopyup");
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace sandlock::os

namespace sandlock::os {

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200  // Linux 6.5; not in glibc 2.36's headers
#endif

void mount_file_over_in(int pidfd, const std::string& source, const std::string& target) {
    // Detached copy of the file's mount, made read-only before anyone can see it.
    UniqueFd tree(::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) throw_errno("open_tree " + source);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
        throw_errno("mount_setattr " + source);
    // setns(CLONE_NEWNS) needs a thread whose fs (root, cwd) nobody shares, and it moves
    // that thread's root into the container: a thread of its own, thrown away afterwards.
    std::string failed;
    int err = 0;
    std::thread enter([&] {
        if (::unshare(CLONE_FS) != 0) {
            err = errno, failed = "unshare(CLONE_FS)";
            return;
        }
        if (::setns(pidfd, CLONE_NEWNS) != 0) {
            err = errno, failed = "setns into the container's mount namespace";
            return;
        }
        // A file mounted there already (ours): the new one goes beneath it and the old one
        // is unmounted, so that one mount is there however many changes come, and the swap
        // is one step for readers. Otherwise (the image's own file) on top of it.
        if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
            if (::umount2(target.c_str(), MNT_DETACH) != 0) err = errno, failed = "unmount the previous " + target;
            return;
        }
        if (errno != EINVAL) {
            err = errno, failed = "move_mount beneath " + target;
            return;
        }
        if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
            err = errno, failed = "move_mount onto " + target;
    });
    enter.join();
    if (err != 0) throw_errno(failed, err);
}

}  // namespace sandlock::os

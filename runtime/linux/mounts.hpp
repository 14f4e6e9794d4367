// OCI mount entries: option parsing (runc's vocabulary) and mounting one entry inside
// the rootfs. Targets are resolved with safe_path, never by a host path string.
#pragma once

#include <string>
#include <vector>

#include "spec/config.hpp"

namespace sandlock::os {

struct MountOptions {
    unsigned long flags = 0;    // MS_* for the mount(2) call (MS_BIND/MS_REC for binds)
    unsigned long cleared = 0;  // MS_* an option turned off explicitly (rw, suid, ...)
    // MS_SHARED/MS_SLAVE/... (| MS_REC), each applied by its own mount(2) afterwards.
    std::vector<unsigned long> propagation;
    // Recursive attributes (rro, rnosuid, ...), applied with mount_setattr(AT_RECURSIVE).
    unsigned long long attr_set = 0;
    unsigned long long attr_clr = 0;
    bool tmpcopyup = false;
    std::string data;  // every option we do not know, comma-separated, for the filesystem

    bool is_bind() const;
};

// Parses options as runc does. Throws sandlock::Error for idmap/ridmap (unsupported).
MountOptions parse_mount_options(const std::vector<std::string>& options);

// "private", "rslave", ... -> MS_* ; "" -> 0. Throws `unknown propagation "x"`.
unsigned long parse_propagation(const std::string& value);
bool is_propagation_name(const std::string& value);

// One v1 hierarchy of the container's cgroup on a v1/hybrid host, e.g.
// {"/sys/fs/cgroup/memory/machine/abc", "memory"}; a name like "cpu,cpuacct" also
// gets the symlinks "cpu" and "cpuacct" next to it.
struct CgroupBind {
    std::string host_path;
    std::string name;
};

struct RootfsOptions {
    bool user_ns = false;                  // init runs in a new user namespace: no mknod
    std::vector<CgroupBind> cgroup_binds;  // for "cgroup" mounts on v1/hybrid hosts
    std::string cgroup2_path;              // host dir of the container's v2 cgroup (fallback bind)
    std::string bundle_dir;                // relative bind sources are relative to it
};

// Mounts one config entry inside the rootfs whose directory fd is root_fd.
void mount_entry(int root_fd, const spec::Mount& m, const RootfsOptions& opt);

// MS_* flags of the mount at `path` that a bind remount must keep (statvfs): inside a
// user namespace the kernel refuses to clear flags locked by a more privileged mount.
unsigned long mount_flags_of(const std::string& path);

// MS_REMOUNT|MS_BIND with `flags`; on EPERM retries keeping the mount's current
// (possibly locked) nosuid/nodev/noexec/ro/atime flags, as runc does.
void bind_remount(const std::string& target, unsigned long flags, const std::string& shown);

// The flags of `m` that a bind remount applies (ro, nosuid, nodev, noexec, atime, ...).
unsigned long remount_flags(unsigned long flags);

}  // namespace sandlock::os

namespace sandlock::os {
// Every option name parse_mount_options() understands (for `features`).
std::vector<std::string> known_mount_options();
}  // namespace sandlock::os

namespace sandlock::os {

// Mounts the file `source` (a path of our own mount namespace) read-only over `target` in
// the mount namespace of the process `pidfd` names, on top of whatever is mounted there:
// a process that opens target afterwards reads the new file whole, one that has it open
// keeps reading the old one — the file is never seen half-written. Where a file is
// mounted at target already, the new one replaces it (mounted beneath, the old one
// unmounted): the mounts do not pile up. For a live change of a running container's
// /etc/hosts. The namespace is entered from a thread of its own,
// which ends with the call. Throws sandlock::Error.
void mount_file_over_in(int pidfd, const std::string& source, const std::string& target);

}  // namespace sandlock::os

#include "runtime/linux/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace sandlock::os {

using spec::NamespaceType;

int clone_flag(NamespaceType t) {
    switch (t) {
        case NamespaceType::Pid: return CLONE_NEWPID;
        case NamespaceType::Network: return CLONE_NEWNET;
        case NamespaceType::Mount: return CLONE_NEWNS;
        case NamespaceType::Ipc: return CLONE_NEWIPC;
        case NamespaceType::Uts: return CLONE_NEWUTS;
        case NamespaceType::User: return CLONE_NEWUSER;
        case NamespaceType::Cgroup: return CLONE_NEWCGROUP;
        case NamespaceType::Time: return CLONE_NEWTIME;
    }
    return 0;
}

bool kernel_has_namespace(NamespaceType t) {
    return fs::exists(std::string("/proc/self/ns/") + spec::namespace_proc_name(t));
}

static UniqueFd open_namespace(const std::string& path, NamespaceType t) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        throw_errno(std::string("open ") + spec::namespace_type_name(t) + " namespace " + path);
    return fd;
}

static void order_user_first(NamespacePlan& plan) {
    std::stable_partition(plan.join.begin(), plan.join.end(),
                          [](const NamespaceJoin& j) { return j.type == NamespaceType::User; });
}

NamespacePlan plan_namespaces(const spec::Linux& linux_cfg) {
    NamespacePlan plan;
    for (const auto& ns : linux_cfg.namespaces) {
        if (!kernel_has_namespace(ns.type))
            throw Error(std::string("namespace ") + spec::namespace_type_name(ns.type) +
                        " is not supported by this kernel");
        if (!ns.path.empty()) {
            plan.join.push_back({ns.type, open_namespace(ns.path, ns.type)});
        } else if (ns.type == NamespaceType::User) {
            plan.new_user = true;
        } else {
            plan.unshare_flags |= clone_flag(ns.type);
        }
    }
    order_user_first(plan);
    return plan;
}

static bool same_namespace(pid_t pid, const char* name) {
    struct stat ours {}, theirs {};
    std::string mine = std::string("/proc/self/ns/") + name;
    std::string other = "/proc/" + std::to_string(pid) + "/ns/" + name;
    if (::stat(mine.c_str(), &ours) != 0 || ::stat(other.c_str(), &theirs) != 0) return false;
    return ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

NamespacePlan plan_join_process(pid_t pid, const spec::Linux& linux_cfg) {
    NamespacePlan plan;
    for (const auto& ns : linux_cfg.namespaces) {
        const char* name = spec::namespace_proc_name(ns.type);
        if (same_namespace(pid, name)) continue;
        std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
        plan.join.push_back({ns.type, open_namespace(path, ns.type)});
    }
    order_user_first(plan);
    if (!linux_cfg.has_namespace(NamespaceType::Mount)) {
        std::string root = "/proc/" + std::to_string(pid) + "/root";
        plan.root = UniqueFd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!plan.root) throw_errno("open " + root);
    }
    return plan;
}

void join_namespaces(NamespacePlan& plan) {
    for (auto& j : plan.join) {
        if (::setns(j.fd.get(), clone_flag(j.type)) != 0)
            throw_errno(std::string("setns ") + spec::namespace_type_name(j.type));
        j.fd.reset();
    }
    if (plan.root) {
        if (::fchdir(plan.root.get()) != 0) throw_errno("chdir to the container's root");
        if (::chroot(".") != 0) throw_errno("chroot to the container's root");
        if (::chdir("/") != 0) throw_errno("chdir /");
        plan.root.reset();
    }
}

void unshare_namespaces(int flags) {
    if (flags != 0 && ::unshare(flags) != 0) throw_errno("unshare namespaces");
}

std::string format_id_map(const std::vector<spec::IdMapping>& map) {
    std::string out;
    for (const auto& m : map)
        out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
               std::to_string(m.size) + "\n";
    return out;
}

void write_id_mappings(pid_t pid, const std::vector<spec::IdMapping>& uid_map,
                       const std::vector<spec::IdMapping>& gid_map) {
    std::string base = "/proc/" + std::to_string(pid) + "/";
    if (!uid_map.empty()) fs::write_file(base + "uid_map", format_id_map(uid_map));
    // Without CAP_SETGID in our own namespace (not root: rootless), the kernel takes a
    // gid_map only once setgroups(2) is denied in the new namespace, as runc and crun do;
    // a container process can then not change its supplementary groups.
    if (!gid_map.empty() && ::geteuid() != 0) fs::write_file(base + "setgroups", "deny");
    if (!gid_map.empty()) fs::write_file(base + "gid_map", format_id_map(gid_map));
}

bool rootless() {
    if (::geteuid() != 0) return true;
    // The initial namespace maps every uid to itself ("0 0 4294967295"); any map whose
    // first line does not start at host uid 0 means our root is someone else's uid.
    // (The uid_map of a namespace created by root may map 0 to 0: that is root.)
    const auto map = fs::try_read_file("/proc/self/uid_map");
    if (!map) return false;
    unsigned long inside = 1, outside = 1;
    if (std::sscanf(map->c_str(), "%lu %lu", &inside, &outside) != 2) return false;
    return !(inside == 0 && outside == 0);
}

void write_time_offsets(const std::map<std::string, spec::TimeOffset>& offsets) {
    std::string text;
    for (const auto& [clock, off] : offsets)
        text += clock + " " + std::to_string(off.secs) + " " + std::to_string(off.nanosecs) + "\n";
    if (!text.empty()) fs::write_file("/proc/self/timens_offsets", text);
}

}  // namespace sandlock::os

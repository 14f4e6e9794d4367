// The cgroup layout of a host: which hierarchies are mounted where, and where
// this process sits in each. Parsing is pure (text in, struct out) so it is
// tested with fake /proc files; probe_host() feeds it the real ones.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandlock::cgroups {

enum class Mode {
    Legacy,   // cgroup v1 only
    Hybrid,   // v1 controllers plus a cgroup2 mount (usually without controllers)
    Unified,  // cgroup2 only
};

std::string to_string(Mode mode);

// One mounted hierarchy (a v1 hierarchy, or the cgroup2 one).
struct Mount {
    std::string mount_point;  // "/sys/fs/cgroup/cpu,cpuacct"
    std::string root;         // the mount's root inside the hierarchy, "/" unless bind-mounted
    // v1: controllers and named hierarchies from the super options
    // ("cpu", "cpuacct", "name=systemd"); v2: the root's cgroup.controllers.
    std::vector<std::string> controllers;
    // This process's cgroup relative to mount_point ("/" or "/a/b"), from
    // /proc/self/cgroup; empty when unknown or outside the mounted subtree.
    std::string own_path;

    bool has(std::string_view controller) const;
};

struct Hierarchy {
    Mode mode = Mode::Legacy;
    std::vector<Mount> v1;     // one entry per v1 hierarchy (bind mounts deduplicated)
    std::optional<Mount> v2;   // the cgroup2 mount, if any

    // The v1 hierarchy carrying `controller` ("memory", "name=systemd"), or null.
    const Mount* find_v1(std::string_view controller) const;
};

// Parses mountinfo, and optionally /proc/self/cgroup (for own_path) and the
// v2 root's cgroup.controllers. Throws sandlock::Error when no cgroup
// filesystem is mounted at all.
Hierarchy probe(const std::string& mountinfo_text, const std::string& self_cgroup_text = {},
                const std::string& v2_controllers_text = {});

// probe() on /proc/self/mountinfo, /proc/self/cgroup and <v2 mount>/cgroup.controllers.
Hierarchy probe_host();

// Mountinfo escapes space, tab, newline and backslash as \ooo octal.
std::string unescape_mountinfo(std::string_view field);

}  // namespace sandlock::cgroups

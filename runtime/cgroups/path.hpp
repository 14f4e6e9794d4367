// linux.cgroupsPath → the cgroup path the managers create, with runc 1.1's rules.
//
// cgroupfs form (the default driver):
//   "/a/b"   absolute: /a/b inside every hierarchy (mount point + /a/b).
//   "a/b"    relative: below this process's own cgroup in each hierarchy
//            (runc 1.1 fs driver; the pure-v2 driver uses the parent of the
//            own cgroup instead, see make_manager). Returned without a leading "/".
//   ""       same as the relative path "<container id>".
//   Paths are cleaned lexically; ".." never climbs above the start.
// systemd form "slice:prefix:name" (with --systemd-cgroup, or whenever the
// path has exactly two colons and no leading "/"):
//   slice "" → system.slice; "a-b.slice" → /a.slice/a-b.slice; "-.slice" → /;
//   unit "<prefix>-<name>.scope", or <name> itself when it ends in ".slice".
//   "system.slice:docker:abc" → "/system.slice/docker-abc.scope".
//   With --systemd-cgroup an empty path means ":runc:<id>".
#pragma once

#include <optional>
#include <string>

namespace sandlock::cgroups {

// A systemd-form cgroupsPath taken apart.
struct SystemdUnit {
    std::string slice;        // the parent slice unit, "system.slice" for ""
    std::string unit;         // "<prefix>-<name>.scope", or <name> ending in ".slice"
    std::string parent_path;  // the slice's cgroup path, "/system.slice"
    std::string cgroup_path() const;  // "/system.slice/<unit>"
};

// The scope prefix runc uses when --systemd-cgroup is given without a path.
inline constexpr const char* kDefaultScopePrefix = "runc";

// Returns an absolute path ("/a/b") or a relative one ("a/b", resolved per
// hierarchy by make_manager). Throws sandlock::Error with a user-ready message.
std::string resolve_cgroups_path(const std::string& cgroups_path, const std::string& container_id,
                                 bool systemd_flag);

// The unit the systemd driver manages: with --systemd-cgroup (systemd_flag), the
// path parsed as "slice:prefix:name" ("" = ":runc:<id>"); without the flag, none.
// Throws sandlock::Error like resolve_cgroups_path.
std::optional<SystemdUnit> systemd_unit(const std::string& cgroups_path,
                                        const std::string& container_id, bool systemd_flag);

// "a-b.slice" → "/a.slice/a-b.slice"; "-.slice" → "/". Throws on invalid names.
std::string expand_slice(const std::string& slice);

// Exactly two colons and no leading "/": "slice:prefix:name".
bool is_systemd_form(const std::string& cgroups_path);

// Lexical cleaning like Go's filepath.Clean, except a relative path stays
// relative and cannot climb above its start ("a/../../b" → "b"). "" stays "".
std::string clean_cgroup_path(const std::string& path);

}  // namespace sandlock::cgroups

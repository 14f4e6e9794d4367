// Process identity of the container's init and exec'd processes: user and groups,
// capabilities (through libcap), rlimits, oom_score_adj, personality, sysctl, hostname.
//
// Every function acts on the calling process (or thread, for capabilities: call them from a
// single-threaded process, as container init is). Errors are sandlock::Error, worded like
// runc's where runc has wording:
//   unable to apply bounding set: Operation not permitted
//   setgroups: Operation not permitted
//   cannot set any additional groups in a rootless container
//   cannot setgid to unmapped gid 1000 in user namespace
//   cannot setuid to unmapped uid 1000 in user namespace
//   unable to apply caps: Operation not permitted
//   setrlimit RLIMIT_NOFILE: Operation not permitted
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spec/config.hpp"

namespace sandlock::os {

// Throws `<json_path>.<set>[i]: unknown capability "CAP_FOO"` for a name that is not
// "CAP_" + an upper-case name libcap knows (e.g. json_path ".process.capabilities").
void validate_capabilities(const spec::Capabilities& caps, const std::string& json_path);

// Where a process would hold one of `names` (OCI spelling, e.g. "CAP_NET_ADMIN"): the
// first (set, name) found in the bounding, effective, inheritable, permitted or ambient
// set, in that order, or nullopt. (Inheritable too: with a file's inheritable capability
// it becomes permitted across execve, whatever the bounding set says.)
struct GrantedCapability {
    std::string set;
    std::string name;
};
std::optional<GrantedCapability> find_granted_capability(const spec::Capabilities& caps,
                                                         const std::vector<std::string>& names);

// Names that libcap knows but the running kernel does not support; finalize_identity skips
// them. runc warns about these: "ignoring unknown or unavailable capabilities: [CAP_X]".
std::vector<std::string> unavailable_capabilities(const spec::Capabilities& caps);

// Throws `<json_path>[i].type: unknown rlimit "RLIMIT_FOO"`,
// `<json_path>[i].type: duplicate rlimit "RLIMIT_NOFILE"` (the runtime spec requires it),
// `<json_path>[i]: soft limit 200 is greater than hard limit 100`
// (e.g. json_path ".process.rlimits").
void validate_rlimits(const std::vector<spec::Rlimit>& rlimits, const std::string& json_path);

// Sets each limit on `pid` (0: the calling process) with prlimit. Raising a hard limit
// needs CAP_SYS_RESOURCE: call before finalize_identity drops capabilities.
void apply_rlimits(const std::vector<spec::Rlimit>& rlimits, pid_t pid = 0);

// Writes /proc/self/oom_score_adj; nothing when unset. Lowering it needs
// CAP_SYS_RESOURCE: call before finalize_identity.
void apply_oom_score_adj(std::optional<int> score);

// LINUX -> PER_LINUX, LINUX32 -> PER_LINUX32; nothing when unset. Flags are ignored, as
// runc does. Throws `unknown personality domain "X"`.
void apply_personality(const std::optional<spec::Personality>& personality);

// Throws `sysctl "<key>": invalid key` for an empty key or one containing "/" or "..",
// or starting or ending with ".".
void validate_sysctl_key(const std::string& key);
// Writes each value to /proc/sys/<key with dots as slashes>; errors read
// `sysctl kernel.msgmax: open /proc/sys/kernel/msgmax: Permission denied`.
void apply_sysctl(const std::map<std::string, std::string>& sysctl);

void set_hostname(const std::string& name);    // "sethostname: <strerror>"
void set_domainname(const std::string& name);  // "setdomainname: <strerror>"

// Becomes process.user with process.capabilities, for a process that is uid 0 with full
// capabilities. Order: drop the bounding set, PR_SET_KEEPCAPS, setgroups(additionalGids)
// (skipped when /proc/self/setgroups is "deny"; then additional gids are an error),
// setresgid, setresuid, clear KEEPCAPS, set effective/permitted/inheritable, raise ambient
// (an ambient capability not in both permitted and inheritable is skipped, as runc does),
// umask. No capabilities object means every set is empty, bounding included (as runc).
// Does not set no_new_privileges: call set_no_new_privileges() where seccomp ordering
// allows.
void finalize_identity(const spec::Process& process);

void set_no_new_privileges();  // "prctl PR_SET_NO_NEW_PRIVS: <strerror>"

}  // namespace sandlock::os

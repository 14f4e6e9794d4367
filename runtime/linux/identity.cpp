#include "runtime/linux/identity.hpp"

#include <grp.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <type_traits>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::os {
namespace {

// ---- capabilities -------------------------------------------------------------------

// The OCI spelling ("CAP_" and upper case) of a name libcap knows. cap_from_name alone
// would also accept "cap_kill" and bare numbers such as "41".
std::optional<cap_value_t> capability_value(const std::string& name) {
    if (name.size() <= 4 || name.compare(0, 4, "CAP_") != 0) return std::nullopt;
    bool spelled_ok = std::all_of(name.begin() + 4, name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    cap_value_t value = 0;
    if (!spelled_ok || ::cap_from_name(name.c_str(), &value) != 0) return std::nullopt;
    return value;
}

bool kernel_supports(cap_value_t cap) { return cap >= 0 && cap < ::cap_max_bits(); }

struct NamedSet {
    const char* field;
    const std::vector<std::string>* names;
};

std::vector<NamedSet> named_sets(const spec::Capabilities& caps) {
    return {{"bounding", &caps.bounding},
            {"effective", &caps.effective},
            {"inheritable", &caps.inheritable},
            {"permitted", &caps.permitted},
            {"ambient", &caps.ambient}};
}

using CapSet = std::set<cap_value_t>;

// The capabilities of one set that this kernel has; unknown names are an error here too,
// in case the caller skipped validation.
CapSet resolve(const std::vector<std::string>& names) {
    CapSet out;
    for (const auto& name : names) {
        auto value = capability_value(name);
        if (!value) throw Error("unknown capability \"" + name + "\"");
        if (kernel_supports(*value)) out.insert(*value);
    }
    return out;
}

struct ResolvedCaps {
    CapSet bounding, effective, inheritable, permitted, ambient;
};

ResolvedCaps resolve(const std::optional<spec::Capabilities>& caps) {
    if (!caps) return {};
    return {resolve(caps->bounding), resolve(caps->effective), resolve(caps->inheritable),
            resolve(caps->permitted), resolve(caps->ambient)};
}

void drop_bounding_set(const CapSet& keep) {
    for (cap_value_t cap = 0; cap < ::cap_max_bits(); ++cap) {
        if (keep.count(cap) || ::cap_get_bound(cap) != 1) continue;
        if (::cap_drop_bound(cap) != 0) throw_errno("unable to apply bounding set");
    }
}

struct CapFree {
    void operator()(cap_t c) const { ::cap_free(c); }
};
using CapHandle = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

void add_flags(cap_t caps, cap_flag_t flag, const CapSet& set) {
    for (cap_value_t cap : set) {
        if (::cap_set_flag(caps, flag, 1, &cap, CAP_SET) != 0) throw_errno("unable to apply caps");
    }
}

void apply_process_caps(const ResolvedCaps& caps) {
    CapHandle handle(::cap_init());
    if (!handle) throw_errno("unable to apply caps");
    add_flags(handle.get(), CAP_EFFECTIVE, caps.effective);
    add_flags(handle.get(), CAP_PERMITTED, caps.permitted);
    add_flags(handle.get(), CAP_INHERITABLE, caps.inheritable);
    if (::cap_set_proc(handle.get()) != 0) throw_errno("unable to apply caps");
}

// The kernel refuses (EPERM) an ambient capability that is not both permitted and
// inheritable; runc goes on without it, and so do we. EINVAL: a kernel without ambient.
void apply_ambient(const CapSet& ambient) {
    if (::cap_reset_ambient() != 0 && errno != EINVAL && errno != EPERM)
        throw_errno("unable to apply caps");
    for (cap_value_t cap : ambient) {
        if (::cap_set_ambient(cap, CAP_SET) != 0 && errno != EINVAL && errno != EPERM)
            throw_errno("unable to apply caps");
    }
}

// ---- user and groups ----------------------------------------------------------------

// "deny" once a user namespace was set up without setgroups (unprivileged / rootless).
bool setgroups_allowed() {
    try {
        std::string v = fs::read_file("/proc/self/setgroups");
        while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
        return v != "deny";
    } catch (const Error&) {
        return true;  // no /proc or an old kernel: setgroups itself will tell
    }
}

void set_groups(const std::vector<uint32_t>& gids) {
    if (!setgroups_allowed()) {
        if (!gids.empty()) throw Error("cannot set any additional groups in a rootless container");
        return;
    }
    // Always called, even with no additional gids: the runtime's own groups must not leak.
    std::vector<gid_t> list(gids.begin(), gids.end());
    if (::setgroups(list.size(), list.data()) != 0) throw_errno("setgroups");
}

void set_ids(uint32_t uid, uint32_t gid) {
    if (::setresgid(gid, gid, gid) != 0) {
        if (errno == EINVAL)
            throw Error("cannot setgid to unmapped gid " + std::to_string(gid) + " in user namespace");
        throw_errno("setgid");
    }
    if (::setresuid(uid, uid, uid) != 0) {
        if (errno == EINVAL)
            throw Error("cannot setuid to unmapped uid " + std::to_string(uid) + " in user namespace");
        throw_errno("setuid");
    }
}

void set_keep_caps(bool keep) {
    if (::prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0) != 0)
        throw_errno(keep ? "unable to set keep caps" : "unable to clear keep caps");
}

// ---- rlimits ------------------------------------------------------------------------

struct RlimitName {
    const char* name;
    int resource;
};

// Every RLIMIT_* of getrlimit(2); the one table libc gives no name lookup for.
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

std::optional<int> rlimit_resource(const std::string& name) {
    for (const auto& r : kRlimits)
        if (name == r.name) return r.resource;
    return std::nullopt;
}

}  // namespace

// ---- public -------------------------------------------------------------------------

void validate_capabilities(const spec::Capabilities& caps, const std::string& json_path) {
    for (const auto& set : named_sets(caps)) {
        for (size_t i = 0; i < set.names->size(); ++i) {
            const std::string& name = (*set.names)[i];
            if (!capability_value(name))
                throw Error(json_path + "." + set.field + "[" + std::to_string(i) +
                            "]: unknown capability \"" + name + "\"");
        }
    }
}

std::optional<GrantedCapability> find_granted_capability(const spec::Capabilities& caps,
                                                         const std::vector<std::string>& names) {
    std::set<cap_value_t> wanted;
    for (const auto& name : names)
        if (auto value = capability_value(name)) wanted.insert(*value);
    for (const auto& set : named_sets(caps)) {
        for (const auto& name : *set.names) {
            // By value, as they are applied: no other spelling can slip through.
            auto value = capability_value(name);
            if (value && wanted.count(*value)) return GrantedCapability{set.field, name};
        }
    }
    return std::nullopt;
}

std::vector<std::string> unavailable_capabilities(const spec::Capabilities& caps) {
    std::set<std::string> names;
    for (const auto& set : named_sets(caps)) {
        for (const auto& name : *set.names) {
            auto value = capability_value(name);
            if (value && !kernel_supports(*value)) names.insert(name);
        }
    }
    return {names.begin(), names.end()};
}

void validate_rlimits(const std::vector<spec::Rlimit>& rlimits, const std::string& json_path) {
    std::set<std::string> seen;
    for (size_t i = 0; i < rlimits.size(); ++i) {
        const auto& r = rlimits[i];
        std::string at = json_path + "[" + std::to_string(i) + "]";
        if (!rlimit_resource(r.type)) throw Error(at + ".type: unknown rlimit \"" + r.type + "\"");
        if (!seen.insert(r.type).second) throw Error(at + ".type: duplicate rlimit \"" + r.type + "\"");
        if (r.soft > r.hard)
            throw Error(at + ": soft limit " + std::to_string(r.soft) +
                        " is greater than hard limit " + std::to_string(r.hard));
    }
}

void apply_rlimits(const std::vector<spec::Rlimit>& rlimits, pid_t pid) {
    for (const auto& r : rlimits) {
        auto resource = rlimit_resource(r.type);
        if (!resource) throw Error("unknown rlimit \"" + r.type + "\"");
        // UINT64_MAX in config.json is RLIM_INFINITY, which has the same value.
        struct rlimit limit {
            static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)
        };
        if (::prlimit(pid, static_cast<__rlimit_resource>(*resource), &limit, nullptr) != 0)
            throw_errno("setrlimit " + r.type);
    }
}

void apply_oom_score_adj(std::optional<int> score) {
    if (score) fs::write_file("/proc/self/oom_score_adj", std::to_string(*score));
}

void apply_personality(const std::optional<spec::Personality>& personality) {
    if (!personality) return;
    unsigned long persona;
    if (personality->domain == "LINUX") {
        persona = PER_LINUX;
    } else if (personality->domain == "LINUX32") {
        persona = PER_LINUX32;
    } else {
        throw Error("unknown personality domain \"" + personality->domain + "\"");
    }
    if (::personality(persona) < 0) throw_errno("personality " + personality->domain);
}

void validate_sysctl_key(const std::string& key) {
    bool bad = key.empty() || key.front() == '.' || key.back() == '.' ||
               key.find('/') != std::string::npos || key.find("..") != std::string::npos;
    if (bad) throw Error("sysctl \"" + key + "\": invalid key");
}

void apply_sysctl(const std::map<std::string, std::string>& sysctl) {
    for (const auto& [key, value] : sysctl) {
        validate_sysctl_key(key);
        std::string path = "/proc/sys/" + key;
        std::replace(path.begin() + 10, path.end(), '.', '/');
        try {
            fs::write_file(path, value);
        } catch (const Error& e) {
            throw Error("sysctl " + key + ": " + e.what());
        }
    }
}

void set_hostname(const std::string& name) {
    if (::sethostname(name.data(), name.size()) != 0) throw_errno("sethostname");
}

void set_domainname(const std::string& name) {
    if (::setdomainname(name.data(), name.size()) != 0) throw_errno("setdomainname");
}

void finalize_identity(const spec::Process& process) {
    ResolvedCaps caps = resolve(process.capabilities);
    // Dropping the bounding set needs CAP_SETPCAP, which the user switch may take away.
    drop_bounding_set(caps.bounding);
    // Keep the permitted set across setresuid to a non-zero uid; trimmed just below.
    set_keep_caps(true);
    set_groups(process.user.additional_gids);
    set_ids(process.user.uid, process.user.gid);
    set_keep_caps(false);
    apply_process_caps(caps);
    apply_ambient(caps.ambient);
    if (process.user.umask) ::umask(static_cast<mode_t>(*process.user.umask & 07777));
}

void set_no_new_privileges() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl PR_SET_NO_NEW_PRIVS");
}

}  // namespace sandlock::os

// Parsing and validation of the OCI runtime-spec config.json / process.json.
//
// Every field is read with one typed reader that knows the field's JSON path, so
// an error always says where it is and why: `.process.terminal: expected boolean,
// got string`. Validation follows what runc rejects, with clearer messages.
#include "spec/config.hpp"

#include <sys/capability.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <charconv>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace sandlock::spec {

using json = nlohmann::json;

// ---- Paths and errors ------------------------------------------------------------------

std::string member_path(const std::string& parent, const std::string& key) {
    return parent + "." + key;
}

std::string element_path(const std::string& parent, size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

std::string entry_path(const std::string& parent, const std::string& key) {
    return parent + "[" + json_quote(key) + "]";
}

std::string json_quote(const std::string& s) {
    // dump() escapes quotes and control characters; replace keeps invalid UTF-8 printable.
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

void throw_at(const std::string& path, const std::string& reason) {
    throw Error((path.empty() ? std::string(".") : path) + ": " + reason);
}

// ---- Typed values ----------------------------------------------------------------------

namespace {

[[noreturn]] void wrong_type(const json& v, const std::string& path, const char* expected) {
    throw_at(path, std::string("expected ") + expected + ", got " + v.type_name());
}

// A JSON integer that fits in T; floats and other types are type errors.
template <class T>
T as_integer(const json& v, const std::string& path) {
    constexpr auto lo = std::numeric_limits<T>::min();
    constexpr auto hi = std::numeric_limits<T>::max();
    auto out_of_range = [&](const std::string& shown) {
        throw_at(path, shown + " out of range (" + std::to_string(lo) + " to " +
                           std::to_string(hi) + ")");
    };
    if (v.is_number_unsigned()) {
        auto u = v.get<uint64_t>();
        if (std::cmp_greater(u, hi)) out_of_range(std::to_string(u));
        return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
        auto s = v.get<int64_t>();
        if (std::cmp_less(s, lo) || std::cmp_greater(s, hi)) out_of_range(std::to_string(s));
        return static_cast<T>(s);
    }
    wrong_type(v, path, "integer");
}

// The member `key` of `obj`, or nullptr when it is missing or null.
const json* find_member(const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

template <class T, class F>
std::optional<T> get_with(const json& obj, const std::string& parent, const char* key, F as) {
    const json* v = find_member(obj, key);
    if (!v) return std::nullopt;
    return as(*v, member_path(parent, key));
}

// Parses obj[key] as an array, each element with parse_one(element, element_path).
template <class F>
auto get_list(const json& obj, const std::string& parent, const char* key, F parse_one) {
    using T = decltype(parse_one(json(), std::string()));
    std::vector<T> out;
    if (const json* a = get_array(obj, parent, key)) {
        const std::string path = member_path(parent, key);
        out.reserve(a->size());
        for (size_t i = 0; i < a->size(); ++i) out.push_back(parse_one((*a)[i], element_path(path, i)));
    }
    return out;
}

}  // namespace

const json& as_object(const json& v, const std::string& path) {
    if (!v.is_object()) wrong_type(v, path, "object");
    return v;
}

const json& as_array(const json& v, const std::string& path) {
    if (!v.is_array()) wrong_type(v, path, "array");
    return v;
}

std::string as_string(const json& v, const std::string& path) {
    if (!v.is_string()) wrong_type(v, path, "string");
    return v.get<std::string>();
}

bool as_bool(const json& v, const std::string& path) {
    if (!v.is_boolean()) wrong_type(v, path, "boolean");
    return v.get<bool>();
}

int as_int(const json& v, const std::string& path) { return as_integer<int>(v, path); }
uint32_t as_u32(const json& v, const std::string& path) { return as_integer<uint32_t>(v, path); }
int64_t as_i64(const json& v, const std::string& path) { return as_integer<int64_t>(v, path); }
uint64_t as_u64(const json& v, const std::string& path) { return as_integer<uint64_t>(v, path); }

// ---- Typed members ---------------------------------------------------------------------

std::optional<std::string> get_string(const json& obj, const std::string& parent, const char* key) {
    return get_with<std::string>(obj, parent, key, as_string);
}

std::optional<bool> get_bool(const json& obj, const std::string& parent, const char* key) {
    return get_with<bool>(obj, parent, key, as_bool);
}

std::optional<int> get_int(const json& obj, const std::string& parent, const char* key) {
    return get_with<int>(obj, parent, key, as_int);
}

std::optional<uint32_t> get_u32(const json& obj, const std::string& parent, const char* key) {
    return get_with<uint32_t>(obj, parent, key, as_u32);
}

std::optional<int64_t> get_i64(const json& obj, const std::string& parent, const char* key) {
    return get_with<int64_t>(obj, parent, key, as_i64);
}

std::optional<uint64_t> get_u64(const json& obj, const std::string& parent, const char* key) {
    return get_with<uint64_t>(obj, parent, key, as_u64);
}

const json* get_object(const json& obj, const std::string& parent, const char* key) {
    const json* v = find_member(obj, key);
    return v ? &as_object(*v, member_path(parent, key)) : nullptr;
}

const json* get_array(const json& obj, const std::string& parent, const char* key) {
    const json* v = find_member(obj, key);
    return v ? &as_array(*v, member_path(parent, key)) : nullptr;
}

std::vector<std::string> get_string_array(const json& obj, const std::string& parent,
                                          const char* key) {
    return get_list(obj, parent, key, as_string);
}

std::vector<uint32_t> get_u32_array(const json& obj, const std::string& parent, const char* key) {
    return get_list(obj, parent, key, as_u32);
}

std::map<std::string, std::string> get_string_map(const json& obj, const std::string& parent,
                                                  const char* key) {
    std::map<std::string, std::string> out;
    const json* m = get_object(obj, parent, key);
    if (!m) return out;
    const std::string path = member_path(parent, key);
    for (const auto& [k, v] : m->items()) out[k] = as_string(v, entry_path(path, k));
    return out;
}

std::string require_string(const json& obj, const std::string& parent, const char* key) {
    auto v = get_string(obj, parent, key);
    if (!v) throw_at(member_path(parent, key), "missing");
    return *v;
}

const json& require_object(const json& obj, const std::string& parent, const char* key) {
    const json* v = get_object(obj, parent, key);
    if (!v) throw_at(member_path(parent, key), "missing");
    return *v;
}

// ---- Names -----------------------------------------------------------------------------

namespace {

struct NamespaceInfo {
    NamespaceType type;
    const char* spec_name;
    const char* proc_name;
};

constexpr NamespaceInfo kNamespaces[] = {
    {NamespaceType::Pid, "pid", "pid"},       {NamespaceType::Network, "network", "net"},
    {NamespaceType::Mount, "mount", "mnt"},   {NamespaceType::Ipc, "ipc", "ipc"},
    {NamespaceType::Uts, "uts", "uts"},       {NamespaceType::User, "user", "user"},
    {NamespaceType::Cgroup, "cgroup", "cgroup"}, {NamespaceType::Time, "time", "time"},
};

const NamespaceInfo& namespace_info(NamespaceType t) {
    for (const auto& info : kNamespaces)
        if (info.type == t) return info;
    throw Error("unknown namespace type " + std::to_string(static_cast<int>(t)));
}

// The resources setrlimit(2) knows on Linux.
const std::set<std::string_view> kRlimits = {
    "RLIMIT_AS",     "RLIMIT_CORE",     "RLIMIT_CPU",      "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",    "RLIMIT_MEMLOCK",  "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE",   "RLIMIT_NPROC",    "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME",   "RLIMIT_SIGPENDING", "RLIMIT_STACK",
};

const std::set<std::string_view> kPropagations = {
    "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate",
    "runbindable",
};

}  // namespace

const char* namespace_type_name(NamespaceType t) { return namespace_info(t).spec_name; }

const char* namespace_proc_name(NamespaceType t) { return namespace_info(t).proc_name; }

std::optional<NamespaceType> namespace_type_from_name(const std::string& name) {
    for (const auto& info : kNamespaces)
        if (name == info.spec_name) return info.type;
    return std::nullopt;
}

const Namespace* Linux::find_namespace(NamespaceType t) const {
    for (const auto& ns : namespaces)
        if (ns.type == t) return &ns;
    return nullptr;
}

bool Linux::has_namespace(NamespaceType t) const { return find_namespace(t) != nullptr; }

// ---- Validation helpers ----------------------------------------------------------------

namespace {

bool is_absolute(const std::string& p) { return !p.empty() && p.front() == '/'; }

void check_absolute(const std::string& value, const std::string& path) {
    if (!is_absolute(value)) throw_at(path, "must be an absolute path, got " + json_quote(value));
}

void check_positive(int64_t value, const std::string& path) {
    if (value <= 0) throw_at(path, "must be greater than 0, got " + std::to_string(value));
}

// "1.0.2-dev" -> (1, 0): major.minor.patch, then nothing or a "-..."/"+..." suffix.
std::optional<std::pair<unsigned, unsigned>> major_minor(std::string_view v) {
    unsigned part[3] = {};
    for (int i = 0; i < 3; ++i) {
        if (i > 0) {
            if (v.empty() || v.front() != '.') return std::nullopt;
            v.remove_prefix(1);
        }
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), part[i]);
        if (ec != std::errc() || end == v.data()) return std::nullopt;
        v.remove_prefix(static_cast<size_t>(end - v.data()));
    }
    if (!v.empty() && v.front() != '-' && v.front() != '+') return std::nullopt;
    return std::pair{part[0], part[1]};
}

void check_oci_version(const std::string& version, const std::string& path) {
    auto min = major_minor(kOciVersionMin);
    auto max = major_minor(kOciVersionMax);
    auto have = major_minor(version);
    if (have && min && max && *have >= *min && *have <= *max) return;
    throw_at(path, "unsupported version " + json_quote(version) + " (supported " + kOciVersionMin +
                       " to " + std::to_string(max->first) + "." + std::to_string(max->second) +
                       ".x)");
}

void check_capability(const std::string& name, const std::string& path) {
    cap_value_t value;
    // libcap also accepts lower case and numbers; the spec wants CAP_* names.
    if (name.rfind("CAP_", 0) != 0 || cap_from_name(name.c_str(), &value) != 0)
        throw_at(path, "unknown capability " + json_quote(name));
}

// ---- Process ---------------------------------------------------------------------------

User parse_user(const json& v, const std::string& path) {
    as_object(v, path);
    User u;
    u.uid = get_u32(v, path, "uid").value_or(0);
    u.gid = get_u32(v, path, "gid").value_or(0);
    u.umask = get_u32(v, path, "umask");
    u.additional_gids = get_u32_array(v, path, "additionalGids");
    u.username = get_string(v, path, "username").value_or("");
    return u;
}

ConsoleSize parse_console_size(const json& v, const std::string& path) {
    as_object(v, path);
    return {get_u32(v, path, "height").value_or(0), get_u32(v, path, "width").value_or(0)};
}

std::vector<std::string> get_capability_list(const json& obj, const std::string& parent,
                                             const char* key) {
    return get_list(obj, parent, key, [](const json& v, const std::string& path) {
        std::string name = as_string(v, path);
        check_capability(name, path);
        return name;
    });
}

Capabilities parse_capabilities(const json& v, const std::string& path) {
    as_object(v, path);
    Capabilities c;
    c.bounding = get_capability_list(v, path, "bounding");
    c.effective = get_capability_list(v, path, "effective");
    c.inheritable = get_capability_list(v, path, "inheritable");
    c.permitted = get_capability_list(v, path, "permitted");
    c.ambient = get_capability_list(v, path, "ambient");
    return c;
}

Rlimit parse_rlimit(const json& v, const std::string& path) {
    as_object(v, path);
    Rlimit r;
    r.type = require_string(v, path, "type");
    r.hard = get_u64(v, path, "hard").value_or(0);
    r.soft = get_u64(v, path, "soft").value_or(0);
    if (!kRlimits.contains(r.type))
        throw_at(member_path(path, "type"), "unknown rlimit " + json_quote(r.type));
    if (r.soft > r.hard)
        throw_at(path, "soft limit " + std::to_string(r.soft) + " is greater than hard limit " +
                           std::to_string(r.hard));
    return r;
}

void check_oom_score_adj(const std::optional<int>& adj, const std::string& path) {
    if (adj && (*adj < -1000 || *adj > 1000))
        throw_at(path, std::to_string(*adj) + " out of range (-1000 to 1000)");
}

// ---- Root, mounts, hooks ---------------------------------------------------------------

Root parse_root(const json& v, const std::string& path) {
    Root r;
    r.path = require_string(v, path, "path");
    r.readonly = get_bool(v, path, "readonly").value_or(false);
    if (r.path.empty()) throw_at(member_path(path, "path"), "must not be empty");
    return r;
}

IdMapping parse_id_mapping(const json& v, const std::string& path) {
    as_object(v, path);
    IdMapping m;
    m.container_id = get_u32(v, path, "containerID").value_or(0);
    m.host_id = get_u32(v, path, "hostID").value_or(0);
    m.size = get_u32(v, path, "size").value_or(0);
    check_positive(m.size, member_path(path, "size"));
    return m;
}

Mount parse_mount(const json& v, const std::string& path) {
    as_object(v, path);
    Mount m;
    m.destination = require_string(v, path, "destination");
    m.type = get_string(v, path, "type").value_or("");
    m.source = get_string(v, path, "source").value_or("");
    m.options = get_string_array(v, path, "options");
    m.uid_mappings = get_list(v, path, "uidMappings", parse_id_mapping);
    m.gid_mappings = get_list(v, path, "gidMappings", parse_id_mapping);
    // runtime-spec 1.1 tolerates relative destinations; runc does not, and neither do we.
    check_absolute(m.destination, member_path(path, "destination"));
    return m;
}

Hooks parse_hooks(const json& v, const std::string& path) {
    Hooks h;
    h.prestart = get_list(v, path, "prestart", parse_hook);
    h.create_runtime = get_list(v, path, "createRuntime", parse_hook);
    h.create_container = get_list(v, path, "createContainer", parse_hook);
    h.start_container = get_list(v, path, "startContainer", parse_hook);
    h.poststart = get_list(v, path, "poststart", parse_hook);
    h.poststop = get_list(v, path, "poststop", parse_hook);
    return h;
}

// ---- Linux -----------------------------------------------------------------------------

Namespace parse_namespace(const json& v, const std::string& path) {
    as_object(v, path);
    std::string name = require_string(v, path, "type");
    auto type = namespace_type_from_name(name);
    if (!type) throw_at(member_path(path, "type"), "unknown namespace " + json_quote(name));
    Namespace ns{*type, get_string(v, path, "path").value_or("")};
    if (!ns.path.empty()) check_absolute(ns.path, member_path(path, "path"));
    return ns;
}

std::vector<Namespace> get_namespaces(const json& obj, const std::string& parent) {
    auto list = get_list(obj, parent, "namespaces", parse_namespace);
    const std::string path = member_path(parent, "namespaces");
    for (size_t i = 0; i < list.size(); ++i)
        for (size_t k = 0; k < i; ++k)
            if (list[k].type == list[i].type)
                throw_at(element_path(path, i),
                         "duplicate namespace " + json_quote(namespace_type_name(list[i].type)));
    return list;
}

Device parse_device(const json& v, const std::string& path) {
    as_object(v, path);
    Device d;
    d.type = require_string(v, path, "type");
    d.path = require_string(v, path, "path");
    d.major = get_i64(v, path, "major").value_or(0);
    d.minor = get_i64(v, path, "minor").value_or(0);
    d.file_mode = get_u32(v, path, "fileMode");
    d.uid = get_u32(v, path, "uid");
    d.gid = get_u32(v, path, "gid");
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
        throw_at(member_path(path, "type"),
                 "unknown device type " + json_quote(d.type) + " (expected c, b, u or p)");
    check_absolute(d.path, member_path(path, "path"));
    return d;
}

SeccompArg parse_seccomp_arg(const json& v, const std::string& path) {
    as_object(v, path);
    SeccompArg a;
    a.index = get_u32(v, path, "index").value_or(0);
    a.value = get_u64(v, path, "value").value_or(0);
    a.value_two = get_u64(v, path, "valueTwo").value_or(0);
    a.op = require_string(v, path, "op");
    return a;
}

SeccompSyscall parse_seccomp_syscall(const json& v, const std::string& path) {
    as_object(v, path);
    SeccompSyscall s;
    s.names = get_string_array(v, path, "names");
    s.action = require_string(v, path, "action");
    s.errno_ret = get_u32(v, path, "errnoRet");
    s.args = get_list(v, path, "args", parse_seccomp_arg);
    return s;
}

// Names of actions, architectures and operators are checked by the seccomp code,
// against what libseccomp knows.
Seccomp parse_seccomp(const json& v, const std::string& path) {
    Seccomp s;
    s.default_action = require_string(v, path, "defaultAction");
    s.default_errno_ret = get_u32(v, path, "defaultErrnoRet");
    s.architectures = get_string_array(v, path, "architectures");
    s.flags = get_string_array(v, path, "flags");
    s.listener_path = get_string(v, path, "listenerPath").value_or("");
    s.listener_metadata = get_string(v, path, "listenerMetadata").value_or("");
    s.syscalls = get_list(v, path, "syscalls", parse_seccomp_syscall);
    return s;
}

Personality parse_personality(const json& v, const std::string& path) {
    Personality p;
    p.domain = require_string(v, path, "domain");
    p.flags = get_string_array(v, path, "flags");
    if (p.domain != "LINUX" && p.domain != "LINUX32")
        throw_at(member_path(path, "domain"),
                 "unknown domain " + json_quote(p.domain) + " (expected LINUX or LINUX32)");
    return p;
}

std::map<std::string, TimeOffset> get_time_offsets(const json& obj, const std::string& parent) {
    std::map<std::string, TimeOffset> out;
    const json* m = get_object(obj, parent, "timeOffsets");
    if (!m) return out;
    const std::string path = member_path(parent, "timeOffsets");
    for (const auto& [clock, v] : m->items()) {
        const std::string p = entry_path(path, clock);
        if (clock != "monotonic" && clock != "boottime")
            throw_at(p, "unknown clock " + json_quote(clock) + " (expected monotonic or boottime)");
        as_object(v, p);
        TimeOffset t{get_i64(v, p, "secs").value_or(0), get_u32(v, p, "nanosecs").value_or(0)};
        if (t.nanosecs >= 1000000000)
            throw_at(member_path(p, "nanosecs"),
                     std::to_string(t.nanosecs) + " out of range (0 to 999999999)");
        out[clock] = t;
    }
    return out;
}

// Mappings are only meaningful for a user namespace; runc refuses them otherwise, and
// refuses a new user namespace without them.
void check_id_mappings(const Linux& l, const std::string& path) {
    const Namespace* user = l.find_namespace(NamespaceType::User);
    auto check = [&](const std::vector<IdMapping>& maps, const char* key) {
        if (!user && !maps.empty()) throw_at(member_path(path, key), "requires a user namespace");
        if (user && user->path.empty() && maps.empty())
            throw_at(member_path(path, key), "required when creating a user namespace");
    };
    check(l.uid_mappings, "uidMappings");
    check(l.gid_mappings, "gidMappings");
}

// Offsets can only be written into a time namespace we create ourselves.
void check_time_offsets(const Linux& l, const std::string& path) {
    if (l.time_offsets.empty()) return;
    const Namespace* time = l.find_namespace(NamespaceType::Time);
    if (!time) throw_at(member_path(path, "timeOffsets"), "requires a time namespace");
    if (!time->path.empty())
        throw_at(member_path(path, "timeOffsets"), "not allowed when joining a time namespace");
}

// Masking paths outside a private mount namespace would mask them on the host.
void check_masked_paths(const Linux& l, const std::string& path) {
    if (l.has_namespace(NamespaceType::Mount)) return;
    if (!l.masked_paths.empty()) throw_at(member_path(path, "maskedPaths"), "requires a mount namespace");
    if (!l.readonly_paths.empty())
        throw_at(member_path(path, "readonlyPaths"), "requires a mount namespace");
}

Linux parse_linux(const json& v, const std::string& path) {
    Linux l;
    l.namespaces = get_namespaces(v, path);
    l.uid_mappings = get_list(v, path, "uidMappings", parse_id_mapping);
    l.gid_mappings = get_list(v, path, "gidMappings", parse_id_mapping);
    l.sysctl = get_string_map(v, path, "sysctl");
    l.cgroups_path = get_string(v, path, "cgroupsPath").value_or("");
    if (const json* r = get_object(v, path, "resources")) l.resources = *r;
    l.devices = get_list(v, path, "devices", parse_device);
    if (const json* s = get_object(v, path, "seccomp"))
        l.seccomp = parse_seccomp(*s, member_path(path, "seccomp"));
    l.rootfs_propagation = get_string(v, path, "rootfsPropagation").value_or("");
    l.masked_paths = get_string_array(v, path, "maskedPaths");
    l.readonly_paths = get_string_array(v, path, "readonlyPaths");
    l.mount_label = get_string(v, path, "mountLabel").value_or("");
    if (const json* p = get_object(v, path, "personality"))
        l.personality = parse_personality(*p, member_path(path, "personality"));
    l.time_offsets = get_time_offsets(v, path);

    if (!l.rootfs_propagation.empty() && !kPropagations.contains(l.rootfs_propagation))
        throw_at(member_path(path, "rootfsPropagation"),
                 "unknown propagation " + json_quote(l.rootfs_propagation));
    check_id_mappings(l, path);
    check_time_offsets(l, path);
    check_masked_paths(l, path);
    return l;
}

// Setting a hostname without a UTS namespace would rename the host.
void check_uts_fields(const Config& c) {
    if (c.linux.has_namespace(NamespaceType::Uts)) return;
    if (!c.hostname.empty()) throw_at(".hostname", "requires a uts namespace");
    if (!c.domainname.empty()) throw_at(".domainname", "requires a uts namespace");
}

// A member that asks for something: present, not null, and not an empty string, array
// or object ("" means "not requested", as in every caller's default config).
bool requested(const json& obj, const char* key) {
    if (!obj.is_object()) return false;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return false;
    if (it->is_string() || it->is_array() || it->is_object()) return !it->empty();
    return true;
}

// Fields of runtime-spec 1.2 that this runtime does not implement: refused by create
// rather than dropped (README, "Refused and ignored fields").
std::vector<std::pair<std::string, std::string>> find_unsupported(const json& j) {
    std::vector<std::pair<std::string, std::string>> out;
    static const json kNone = json::object();
    const json& process = j.contains("process") && j["process"].is_object() ? j["process"] : kNone;
    const json& linux_cfg = j.contains("linux") && j["linux"].is_object() ? j["linux"] : kNone;
    const char* no = "not supported by sandlock-runc";
    if (requested(process, "ioPriority")) out.emplace_back(".process.ioPriority", no);
    if (requested(process, "scheduler")) out.emplace_back(".process.scheduler", no);
    if (requested(process, "execCPUAffinity")) out.emplace_back(".process.execCPUAffinity", no);
    if (requested(linux_cfg, "intelRdt")) out.emplace_back(".linux.intelRdt", "Intel RDT is " + std::string(no));
    if (requested(linux_cfg, "memoryPolicy")) out.emplace_back(".linux.memoryPolicy", no);
    if (requested(linux_cfg, "netDevices")) out.emplace_back(".linux.netDevices", no);
    if (linux_cfg.contains("personality") && requested(linux_cfg["personality"], "flags"))
        out.emplace_back(".linux.personality.flags", "the runtime-spec defines no personality flags");
    return out;
}

json parse_json_file(const std::string& file) {
    std::string text = fs::read_file(file);
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep the reason.
        std::string msg = e.what();
        if (auto close = msg.find("] "); msg.starts_with("[json.exception.") && close != msg.npos)
            msg.erase(0, close + 2);
        for (char& ch : msg)
            if (ch == '\n' || ch == '\r') ch = ' ';
        throw Error("parse " + file + ": " + msg);
    }
}

}  // namespace

// ---- Public entry points ---------------------------------------------------------------

Hook parse_hook(const json& v, const std::string& path) {
    as_object(v, path);
    Hook h;
    h.path = require_string(v, path, "path");
    h.args = get_string_array(v, path, "args");
    h.env = get_string_array(v, path, "env");
    h.timeout = get_int(v, path, "timeout");
    check_absolute(h.path, member_path(path, "path"));
    if (h.timeout) check_positive(*h.timeout, member_path(path, "timeout"));
    return h;
}

Process parse_process(const json& v, const std::string& path) {
    as_object(v, path);
    Process p;
    p.terminal = get_bool(v, path, "terminal").value_or(false);
    if (const json* c = get_object(v, path, "consoleSize"))
        p.console_size = parse_console_size(*c, member_path(path, "consoleSize"));
    if (const json* u = get_object(v, path, "user")) p.user = parse_user(*u, member_path(path, "user"));
    p.args = get_string_array(v, path, "args");
    p.env = get_string_array(v, path, "env");
    p.cwd = get_string(v, path, "cwd").value_or("/");
    if (const json* c = get_object(v, path, "capabilities"))
        p.capabilities = parse_capabilities(*c, member_path(path, "capabilities"));
    p.rlimits = get_list(v, path, "rlimits", parse_rlimit);
    p.no_new_privileges = get_bool(v, path, "noNewPrivileges").value_or(false);
    p.apparmor_profile = get_string(v, path, "apparmorProfile").value_or("");
    p.oom_score_adj = get_int(v, path, "oomScoreAdj");
    p.selinux_label = get_string(v, path, "selinuxLabel").value_or("");

    if (p.args.empty()) throw_at(member_path(path, "args"), "must not be empty");
    check_absolute(p.cwd, member_path(path, "cwd"));
    check_oom_score_adj(p.oom_score_adj, member_path(path, "oomScoreAdj"));
    return p;
}

Hooks parse_config_hooks(const json& j) {
    as_object(j, "");
    const json* h = get_object(j, "", "hooks");
    return h ? parse_hooks(*h, ".hooks") : Hooks{};
}

Config parse_config(const json& j) {
    as_object(j, "");
    Config c;
    c.oci_version = require_string(j, "", "ociVersion");
    check_oci_version(c.oci_version, ".ociVersion");
    c.root = parse_root(require_object(j, "", "root"), ".root");
    if (const json* p = get_object(j, "", "process")) c.process = parse_process(*p, ".process");
    c.hostname = get_string(j, "", "hostname").value_or("");
    c.domainname = get_string(j, "", "domainname").value_or("");
    c.mounts = get_list(j, "", "mounts", parse_mount);
    if (const json* h = get_object(j, "", "hooks")) c.hooks = parse_hooks(*h, ".hooks");
    c.annotations = get_string_map(j, "", "annotations");
    if (const json* l = get_object(j, "", "linux")) c.linux = parse_linux(*l, ".linux");
    check_uts_fields(c);
    c.unsupported = find_unsupported(j);
    return c;
}

void require_process(const Config& config) {
    if (!config.process) throw_at(".process", "missing");
}

Config load_config(const std::string& bundle_dir) {
    return parse_config(parse_json_file(fs::join(bundle_dir, "config.json")));
}

Process load_process(const std::string& file) { return parse_process(parse_json_file(file), ""); }

// ---- `spec` ----------------------------------------------------------------------------

namespace {

bool cgroup2_unified() {
    struct statfs st {};
    return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

json default_mounts() {
    auto mount = [](const char* dest, const char* type, const char* source,
                    std::vector<std::string> options) {
        json m = {{"destination", dest}, {"type", type}, {"source", source}};
        if (!options.empty()) m["options"] = options;
        return m;
    };
    return json::array({
        mount("/proc", "proc", "proc", {}),
        mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
        mount("/dev/pts", "devpts", "devpts",
              {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
        mount("/dev/shm", "tmpfs", "shm",
              {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
        mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
        mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
    });
}

// What runc's --rootless does to the example: a user namespace mapping the caller to
// root, no network namespace (it could not be configured), /sys bound from the host
// (sysfs cannot be mounted without owning a network namespace), no uid=/gid= mount
// options (the ids are not mapped) and no cgroup resources (no cgroup delegation assumed).
void make_rootless(json& spec) {
    json namespaces = json::array();
    for (const auto& ns : spec["linux"]["namespaces"])
        if (ns["type"] != "network" && ns["type"] != "user") namespaces.push_back(ns);
    namespaces.push_back({{"type", "user"}});
    spec["linux"]["namespaces"] = namespaces;
    spec["linux"]["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", ::geteuid()}, {"size", 1}}});
    spec["linux"]["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", ::getegid()}, {"size", 1}}});
    spec["linux"].erase("resources");

    for (auto& m : spec["mounts"]) {
        if (m["destination"] == "/sys") {
            m = {{"destination", "/sys"}, {"type", "none"}, {"source", "/sys"},
                 {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}};
            continue;
        }
        if (!m.contains("options")) continue;
        json kept = json::array();
        for (const auto& opt : m["options"]) {
            const auto& s = opt.get_ref<const std::string&>();
            if (!s.starts_with("uid=") && !s.starts_with("gid=")) kept.push_back(opt);
        }
        m["options"] = kept;
    }
}

}  // namespace

json default_spec(bool rootless) {
    const json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
    json namespaces = json::array();
    for (const char* t : {"pid", "network", "ipc", "uts", "mount"}) namespaces.push_back({{"type", t}});
    // Like runc: a cgroup namespace only where cgroup v2 is the whole hierarchy.
    if (cgroup2_unified()) namespaces.push_back({{"type", "cgroup"}});

    json spec = {
        {"ociVersion", kOciVersion},
        {"process",
         {{"terminal", true},
          {"user", {{"uid", 0}, {"gid", 0}}},
          {"args", json::array({"sh"})},
          {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
          {"cwd", "/"},
          {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
          {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
          {"noNewPrivileges", true}}},
        {"root", {{"path", "rootfs"}, {"readonly", true}}},
        {"hostname", "sandlock"},
        {"mounts", default_mounts()},
        {"linux",
         {{"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
          {"namespaces", namespaces},
          {"maskedPaths",
           {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"}},
          {"readonlyPaths",
           {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
    };
    if (rootless) make_rootless(spec);
    return spec;
}

}  // namespace sandlock::spec

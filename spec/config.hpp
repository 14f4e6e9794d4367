// The OCI runtime-spec model (config.json and process.json), Linux only.
//
// parse_config()/parse_process() turn JSON into these structs and validate
// them. Every error is a sandlock::Error whose message names the JSON path
// and the reason, e.g. `.linux.namespaces[2].type: unknown namespace "foo"`.
// Unknown fields are ignored; a field of the wrong type is an error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sandlock::spec {

// Oldest and newest runtime-spec versions we accept (major 1, minor 0..2).
inline constexpr const char* kOciVersionMin = "1.0.0";
inline constexpr const char* kOciVersionMax = "1.2.0";
// The version we write into state.json and `spec` output.
inline constexpr const char* kOciVersion = "1.2.0";

struct IdMapping {
    uint32_t container_id = 0;
    uint32_t host_id = 0;
    uint32_t size = 0;
};

struct User {
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::optional<uint32_t> umask;
    std::vector<uint32_t> additional_gids;
    std::string username;
};

struct Rlimit {
    std::string type;  // "RLIMIT_NOFILE", ...
    uint64_t hard = 0;
    uint64_t soft = 0;
};

struct Capabilities {
    std::vector<std::string> bounding, effective, inheritable, permitted, ambient;
};

struct ConsoleSize {
    unsigned height = 0;
    unsigned width = 0;
};

struct Process {
    bool terminal = false;
    std::optional<ConsoleSize> console_size;
    User user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd = "/";
    std::optional<Capabilities> capabilities;
    std::vector<Rlimit> rlimits;
    bool no_new_privileges = false;
    std::string apparmor_profile;
    std::optional<int> oom_score_adj;
    std::string selinux_label;
};

struct Root {
    std::string path;
    bool readonly = false;
};

struct Mount {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
    std::vector<IdMapping> uid_mappings, gid_mappings;
};

struct Hook {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<int> timeout;  // seconds, > 0
};

struct Hooks {
    std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
        poststop;
};

enum class NamespaceType { Pid, Network, Mount, Ipc, Uts, User, Cgroup, Time };

struct Namespace {
    NamespaceType type;
    std::string path;  // empty: create a new one
};

struct Device {
    std::string type;  // "c", "b", "u", "p"
    std::string path;
    int64_t major = 0;
    int64_t minor = 0;
    std::optional<uint32_t> file_mode;
    std::optional<uint32_t> uid;
    std::optional<uint32_t> gid;
};

struct SeccompArg {
    unsigned index = 0;
    uint64_t value = 0;
    uint64_t value_two = 0;
    std::string op;  // "SCMP_CMP_EQ", ...
};

struct SeccompSyscall {
    std::vector<std::string> names;
    std::string action;  // "SCMP_ACT_ERRNO", ...
    std::optional<uint32_t> errno_ret;
    std::vector<SeccompArg> args;
};

struct Seccomp {
    std::string default_action;
    std::optional<uint32_t> default_errno_ret;
    std::vector<std::string> architectures;
    std::vector<std::string> flags;
    std::string listener_path;
    std::string listener_metadata;
    std::vector<SeccompSyscall> syscalls;
};

struct Personality {
    std::string domain;  // "LINUX" or "LINUX32"
    std::vector<std::string> flags;
};

struct TimeOffset {
    int64_t secs = 0;
    uint32_t nanosecs = 0;
};

struct Linux {
    std::vector<Namespace> namespaces;
    std::vector<IdMapping> uid_mappings, gid_mappings;
    std::map<std::string, std::string> sysctl;
    std::string cgroups_path;
    // linux.resources, kept as JSON: the cgroup managers interpret it.
    // Always an object (empty when the config has none), so .value()/.contains() work.
    nlohmann::json resources = nlohmann::json::object();
    std::vector<Device> devices;
    std::optional<Seccomp> seccomp;
    std::string rootfs_propagation;
    std::vector<std::string> masked_paths;
    std::vector<std::string> readonly_paths;
    std::string mount_label;
    std::optional<Personality> personality;
    std::map<std::string, TimeOffset> time_offsets;  // "monotonic", "boottime"

    bool has_namespace(NamespaceType t) const;
    const Namespace* find_namespace(NamespaceType t) const;
};

struct Config {
    std::string oci_version;
    Root root;
    std::optional<Process> process;
    std::string hostname;
    std::string domainname;
    std::vector<Mount> mounts;
    Hooks hooks;
    std::map<std::string, std::string> annotations;
    Linux linux;
    // JSON paths of fields the config asks for and this runtime cannot honour
    // (e.g. ".linux.intelRdt"), each with the reason; `create` refuses the first.
    // Kept apart from parsing so that a saved config still loads for delete/state.
    std::vector<std::pair<std::string, std::string>> unsupported;
};

// Parses and validates; throws sandlock::Error naming the JSON path.
Config parse_config(const nlohmann::json& j);
Process parse_process(const nlohmann::json& j, const std::string& path_prefix = ".process");
Hook parse_hook(const nlohmann::json& j, const std::string& path);
// The hooks of a config (`start` and `delete` need nothing else of the saved one).
Hooks parse_config_hooks(const nlohmann::json& j);

// Throws `.process: missing` when the config has no process (create needs one).
void require_process(const Config& config);

// Reads <bundle>/config.json; errors name the file.
Config load_config(const std::string& bundle_dir);
// Reads a process.json file (for `exec --process`). Its fields are at the top level,
// so error paths are `.args`, `.cwd`, ...
Process load_process(const std::string& file);

const char* namespace_type_name(NamespaceType t);  // "pid", "network", ...
std::optional<NamespaceType> namespace_type_from_name(const std::string& name);
// The /proc/PID/ns/<name> entry for a namespace type ("net" for network).
const char* namespace_proc_name(NamespaceType t);

// The default config written by `sandlock-runc spec` (runc-compatible).
nlohmann::json default_spec(bool rootless);

// ---- Typed JSON readers, shared by the spec/ parsers ----------------------------------
// Paths are jq-style: "" is the document (shown as "."), ".process.args[2]",
// ".annotations[\"io.x\"]". Every error is `<path>: <reason>`.

std::string member_path(const std::string& parent, const std::string& key);  // parent.key
std::string element_path(const std::string& parent, size_t index);          // parent[i]
std::string entry_path(const std::string& parent, const std::string& key);   // parent["k"]
// `s` as a JSON string literal, for messages: "foo" (quotes and escapes included).
std::string json_quote(const std::string& s);
[[noreturn]] void throw_at(const std::string& path, const std::string& reason);

// A value that must have one type; `<path>: expected <type>, got <json type>` otherwise.
// Integers must be JSON integers within the target range (`<path>: 5000000000 out of
// range (0 to 4294967295)`).
const nlohmann::json& as_object(const nlohmann::json& v, const std::string& path);
const nlohmann::json& as_array(const nlohmann::json& v, const std::string& path);
std::string as_string(const nlohmann::json& v, const std::string& path);
bool as_bool(const nlohmann::json& v, const std::string& path);
int as_int(const nlohmann::json& v, const std::string& path);
uint32_t as_u32(const nlohmann::json& v, const std::string& path);
int64_t as_i64(const nlohmann::json& v, const std::string& path);
uint64_t as_u64(const nlohmann::json& v, const std::string& path);

// obj[key] at member_path(parent, key). `obj` must be an object. A missing member, or a
// null one (Go's decoder, which runc uses, treats null as absent), gives nullopt/nullptr/
// an empty container; a member of the wrong type throws.
std::optional<std::string> get_string(const nlohmann::json& obj, const std::string& parent,
                                      const char* key);
std::optional<bool> get_bool(const nlohmann::json& obj, const std::string& parent, const char* key);
std::optional<int> get_int(const nlohmann::json& obj, const std::string& parent, const char* key);
std::optional<uint32_t> get_u32(const nlohmann::json& obj, const std::string& parent,
                                const char* key);
std::optional<int64_t> get_i64(const nlohmann::json& obj, const std::string& parent,
                               const char* key);
std::optional<uint64_t> get_u64(const nlohmann::json& obj, const std::string& parent,
                                const char* key);
const nlohmann::json* get_object(const nlohmann::json& obj, const std::string& parent,
                                 const char* key);
const nlohmann::json* get_array(const nlohmann::json& obj, const std::string& parent,
                                const char* key);
std::vector<std::string> get_string_array(const nlohmann::json& obj, const std::string& parent,
                                          const char* key);
std::vector<uint32_t> get_u32_array(const nlohmann::json& obj, const std::string& parent,
                                    const char* key);
std::map<std::string, std::string> get_string_map(const nlohmann::json& obj,
                                                  const std::string& parent, const char* key);
// Like get_string/get_object, but a missing member throws `<path>: missing`.
std::string require_string(const nlohmann::json& obj, const std::string& parent, const char* key);
const nlohmann::json& require_object(const nlohmann::json& obj, const std::string& parent,
                                     const char* key);

}  // namespace sandlock::spec

// Loading the egress programs with libbpf, filling their maps from a ResolvedPolicy, and
// reading their counters and events. The programs' logic is in bpf/egress.bpf.c.
#include "runtime/egress/kernel_layer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "egress.skel.h"  // generated: the programs' object, embedded
#include "runtime/egress/bpf/egress_maps.h"
#include "runtime/linux/cgroup_bpf.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::egress {

namespace cb = os::cgroup_bpf;

namespace {

// ---- libbpf's messages: kept (not printed), so that a refusal names the verifier's reason

std::mutex& libbpf_log_mutex() {
    static std::mutex m;
    return m;
}
std::string& libbpf_log() {
    static std::string log;
    return log;
}

int keep_libbpf_message(libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    char line[1024];
    const int n = std::vsnprintf(line, sizeof line, format, args);
    std::lock_guard lock(libbpf_log_mutex());
    std::string& log = libbpf_log();
    log.append(line, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof line) - 1)));
    if (log.size() > 64 * 1024) log.erase(0, log.size() - 32 * 1024);
    return 0;
}

void quiet_libbpf() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(keep_libbpf_message); });
}

// The last verifier-looking line libbpf reported since the last call (or "").
std::string take_libbpf_reason() {
    std::lock_guard lock(libbpf_log_mutex());
    std::string text;
    text.swap(libbpf_log());
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    std::size_t end = text.size();
    while (end > 0) {
        const std::size_t start = text.rfind('\n', end - 1);
        const std::size_t from = start == std::string::npos ? 0 : start + 1;
        std::string line = text.substr(from, end - from);
        // libbpf closes its report with "-- END PROG LOAD LOG --" and a summary line.
        if (!line.empty() && line.find("END PROG LOAD LOG") == std::string::npos &&
            !line.starts_with("libbpf: prog") && !line.starts_with("libbpf: failed to load"))
            return line;
        if (start == std::string::npos) break;
        end = start;
    }
    return "";
}

[[noreturn]] void throw_libbpf(const std::string& what, int ret) {
    const std::string reason = take_libbpf_reason();
    throw SystemError("egress: " + what + (reason.empty() ? "" : " [" + reason + "]"), ret < 0 ? -ret : EINVAL);
}

std::uint32_t scope_of(Protocol protocol, IpAddr::Family family) {
    const std::uint32_t p = protocol == Protocol::Tcp ? SL_TCP : protocol == Protocol::Udp ? SL_UDP : SL_ICMP;
    return (p << 8) | (family == IpAddr::Family::V4 ? SL_V4 : SL_V6);
}

sl_prefix_key key_of(Protocol protocol, const Cidr& prefix) {
    sl_prefix_key key{};
    key.prefixlen = SL_SCOPE_BITS + prefix.prefix;
    key.scope = scope_of(protocol, prefix.base.family);
    std::memcpy(key.addr, prefix.base.bytes.data(), sizeof key.addr);
    return key;
}

// The any-IP prefix of a family.
Cidr everything(IpAddr::Family family) {
    IpAddr zero;
    zero.family = family;
    return Cidr::of(zero, 0);
}

struct IndexedRule {
    const RuleRow* row;
    std::uint32_t slot;
};

bool covers(const RuleRow& rule, const Cidr& prefix) {
    if (!rule.where) return true;
    const Cidr& w = *rule.where;
    return w.base.family == prefix.base.family && w.prefix <= prefix.prefix && w.contains(prefix.base);
}

int specificity(const RuleRow& rule) { return rule.where ? rule.where->prefix : -1; }

// The maps' contents for a policy.
struct MapContents {
    sl_config config{};
    std::vector<sl_address_key> address_keys;  // single addresses
    std::vector<sl_prefix_value> address_values;
    std::vector<sl_prefix_key> prefix_keys;  // networks and any-IP
    std::vector<sl_prefix_value> prefix_values;
    std::uint32_t entries = 0;  // entries with their ports in the ports map: its entry ids
    std::vector<sl_port_key> port_keys;
    std::vector<std::uint32_t> port_values;
};

std::uint32_t mode_code(Mode m) {
    switch (m) {
        case Mode::Open: return SL_MODE_OPEN;
        case Mode::Allow: return SL_MODE_ALLOW;
        case Mode::Deny: return SL_MODE_DENY;
    }
    return SL_MODE_ALLOW;
}

std::uint32_t audit_code(Audit a) {
    switch (a) {
        case Audit::Off: return SL_AUDIT_OFF;
        case Audit::Deny: return SL_AUDIT_DENY;
        case Audit::All: return SL_AUDIT_ALL;
    }
    return SL_AUDIT_DENY;
}

// One LPM entry per distinct prefix of a protocol's rules, holding the union of the port
// sets of every rule that contains it (see egress_maps.h); each port names the most
// specific rule that has it, for the counters.
void add_protocol(MapContents& out, Protocol protocol, const std::vector<IndexedRule>& rules) {
    if (rules.empty()) return;
    std::vector<Cidr> prefixes;
    bool any = false;
    for (const auto& r : rules) {
        if (r.row->where)
            prefixes.push_back(*r.row->where);
        else
            any = true;
    }
    if (any) {
        prefixes.push_back(everything(IpAddr::Family::V4));
        prefixes.push_back(everything(IpAddr::Family::V6));
    }
    std::sort(prefixes.begin(), prefixes.end());
    prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());

    // The rules that can contain another prefix: any-IP rules and networks. A single
    // address contains only itself: found by binary search among the singles (sorted, the
    // first rule of an address first). Sorted vectors, and one covering list and port list
    // reused for every prefix: a policy of a thousand addresses made ~3000 allocations
    // here, each new page of them a fault (11 us on the development machine).
    std::vector<IndexedRule> wide;
    std::vector<std::pair<Cidr, IndexedRule>> single;
    for (const auto& r : rules) {
        if (r.row->where && r.row->where->is_single())
            single.emplace_back(*r.row->where, r);
        else
            wide.push_back(r);
    }
    std::stable_sort(single.begin(), single.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::stable_sort(wide.begin(), wide.end(), [](const IndexedRule& a, const IndexedRule& b) {
        return specificity(*a.row) > specificity(*b.row);
    });

    std::vector<IndexedRule> covering;  // most specific first
    std::vector<std::pair<std::uint16_t, std::uint32_t>> ports;  // port -> slot, the first (most specific) wins
    for (const Cidr& prefix : prefixes) {
        covering.clear();
        const auto it = std::lower_bound(single.begin(), single.end(), prefix,
                                         [](const auto& entry, const Cidr& c) { return entry.first < c; });
        if (it != single.end() && it->first == prefix) covering.push_back(it->second);
        for (const auto& r : wide)
            if (covers(*r.row, prefix)) covering.push_back(r);

        sl_prefix_value value{};
        value.entry = value.all_ports_slot = SL_NO_SLOT;
        for (const auto& r : covering)
            if (r.row->all_ports) {
                value.all_ports_slot = r.slot;
                break;
            }
        ports.clear();
        if (value.all_ports_slot == SL_NO_SLOT)
            for (const auto& r : covering)
                for (const auto port : r.row->ports) ports.emplace_back(port, r.slot);
        // by port, the first of each port kept: the most specific rule's slot
        std::stable_sort(ports.begin(), ports.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        ports.erase(std::unique(ports.begin(), ports.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
                    ports.end());
        if (ports.size() <= SL_INLINE_PORTS) {
            std::size_t i = 0;
            for (const auto& [port, slot] : ports) {
                value.ports[i] = port;
                value.port_slots[i++] = slot;
            }
        } else {
            value.entry = out.entries++;
            for (const auto& [port, slot] : ports) {
                out.port_keys.push_back({value.entry, port});
                out.port_values.push_back(slot);
            }
        }
        if (prefix.is_single()) {
            sl_address_key key{};
            key.scope = scope_of(protocol, prefix.base.family);
            std::memcpy(key.addr, prefix.base.bytes.data(), sizeof key.addr);
            out.address_keys.push_back(key);
            out.address_values.push_back(value);
        } else {
            out.prefix_keys.push_back(key_of(protocol, prefix));
            out.prefix_values.push_back(value);
        }
    }
}

// The policy's settings in the cgroup's storage (what its rules do not say).
sl_config config_of(const ResolvedPolicy& policy) {
    sl_config config{};
    config.mode = mode_code(policy.mode);
    config.loopback_allowed = policy.loopback == Loopback::Allow ? 1 : 0;
    config.audit = audit_code(policy.audit);
    return config;
}

MapContents map_contents(const ResolvedPolicy& policy, const std::vector<RuleRow>& rows) {
    MapContents out;
    out.config = config_of(policy);
    // at most one single-address entry a row
    out.address_keys.reserve(rows.size());
    out.address_values.reserve(rows.size());
    std::vector<IndexedRule> rules;
    rules.reserve(rows.size());
    for (const Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp}) {
        rules.clear();
        for (std::size_t i = 0; i < rows.size(); ++i)
            if (rows[i].protocol == protocol)
                rules.push_back({&rows[i], static_cast<std::uint32_t>(SL_SLOT_FIRST_RULE + i)});
        add_protocol(out, protocol, rules);
    }
    if (out.address_keys.size() > SL_MAX_PREFIXES || out.prefix_keys.size() > SL_MAX_PREFIXES ||
        out.port_keys.size() > SL_MAX_PORTS)
        throw Error("egress: the policy is too large for the kernel's maps (" + std::to_string(out.entries) +
                    " prefixes, " + std::to_string(out.port_keys.size()) + " address and port pairs; at most " +
                    std::to_string(SL_MAX_PREFIXES) + " and " + std::to_string(SL_MAX_PORTS) + ")");
    return out;
}

void update(int map_fd, const void* key, const void* value, const char* map) {
    if (const int ret = bpf_map_update_elem(map_fd, key, value, BPF_ANY); ret != 0)
        throw_errno(std::string("egress: fill the ") + map + " map (bpf BPF_MAP_UPDATE_ELEM)", -ret);
}

// Many entries in one call where the kernel has batch updates for the map type. A per-CPU
// map's value is one V per possible CPU (per_key of them).
template <typename K, typename V>
void update_all(int map_fd, const std::vector<K>& keys, const std::vector<V>& values, const char* map,
                std::size_t per_key = 1) {
    if (keys.empty()) return;
    std::uint32_t count = static_cast<std::uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    const int ret = bpf_map_update_batch(map_fd, keys.data(), values.data(), &count, &opts);
    if (ret == 0 && count == keys.size()) return;
    constexpr int kEnotsupp = 524;  // the kernel's ENOTSUPP: no batch operation for this map type
    if (ret != 0 && ret != -EINVAL && ret != -kEnotsupp && ret != -EOPNOTSUPP)
        throw_errno(std::string("egress: fill the ") + map + " map (bpf BPF_MAP_UPDATE_BATCH)", -ret);
    for (std::size_t i = ret == 0 ? count : 0; i < keys.size(); ++i) update(map_fd, &keys[i], &values[i * per_key], map);
}

// The programs write decision records only under io.sandlock.audit (egress.bpf.c's
// record()), which a live change keeps: without it the smallest ring the kernel makes (a
// page) stands in for the container's life, since a 256 KiB one costs create ~0.3 ms
// here (its pages zeroed, charged and mapped) for records that never come.
std::uint32_t events_ring_bytes(Audit audit) {
    return audit == Audit::Off ? static_cast<std::uint32_t>(::sysconf(_SC_PAGESIZE)) : SL_EVENTS_BYTES;
}

UniqueFd dup_fd(int fd) {
    UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!copy) throw_errno("egress: keep a map fd");
    return copy;
}

const char* hook_name(bpf_attach_type type) {
    switch (type) {
        case BPF_CGROUP_INET4_CONNECT: return "connect4";
        case BPF_CGROUP_INET6_CONNECT: return "connect6";
        case BPF_CGROUP_UDP4_SENDMSG: return "sendmsg4";
        case BPF_CGROUP_UDP6_SENDMSG: return "sendmsg6";
        case BPF_CGROUP_INET_SOCK_CREATE: return "sock_create";
        case BPF_CGROUP_INET_SOCK_RELEASE: return "sock_release";
        case BPF_CGROUP_INET_EGRESS: return "inet_egress";
        default: return "cgroup";
    }
}

struct SkeletonDeleter {
    void operator()(egress_bpf* s) const { egress_bpf__destroy(s); }
};

// ---- the programs and outer maps every container shares

// Where they are pinned: one directory per build of the programs (a new build's programs
// never meet an older build's maps), under the machine's bpffs.
constexpr const char* kBpffs = "/sys/fs/bpf";
constexpr const char* kPinRoot = "/sys/fs/bpf/sandlock-runc";
constexpr unsigned long kBpffsMagic = 0xcafe4a11;  // BPF_FS_MAGIC

constexpr std::size_t kPrograms = 7;

struct SharedLayer {
    std::array<UniqueFd, kPrograms> programs;  // in kernel_layer_attach_types() order
    UniqueFd policy_ref, addresses, prefixes, ports, counters, events;  // the outer maps
};

constexpr const char* kProgramPins[kPrograms] = {"socket_create", "connect4",      "connect6",      "sendmsg4",
                                                 "sendmsg6",      "egress_packet", "socket_release"};
constexpr std::size_t kMaps = 6;
constexpr const char* kMapPins[kMaps] = {"policy_ref",    "policy_addresses", "policy_prefixes",
                                         "policy_ports", "policy_counters",  "policy_events"};

std::array<UniqueFd*, kMaps> map_slots(SharedLayer& l) {
    return {&l.policy_ref, &l.addresses, &l.prefixes, &l.ports, &l.counters, &l.events};
}

// Once a process: create asks on two threads, and the hash reads the whole object (90 KiB).
const std::string& build_pin_dir() {
    static const std::string dir = [] {
        std::size_t size = 0;
        const void* elf = egress_bpf__elf_bytes(&size);
        const std::size_t h = std::hash<std::string_view>{}(std::string_view(static_cast<const char*>(elf), size));
        char name[32];
        std::snprintf(name, sizeof name, "%016zx", h);
        return std::string(kPinRoot) + "/" + name;
    }();
    return dir;
}

bool bpffs_mounted() {
    struct statfs st{};
    return ::statfs(kBpffs, &st) == 0 && static_cast<unsigned long>(st.f_type) == kBpffsMagic;
}

SharedLayer load_programs() {
    std::unique_ptr<egress_bpf, SkeletonDeleter> skeleton(egress_bpf__open());
    if (!skeleton) throw_libbpf("open the programs' object (libbpf)", -errno);
    egress_bpf& s = *skeleton;
    if (const int ret = egress_bpf__load(&s); ret != 0) throw_libbpf("load the cgroup programs (bpf BPF_PROG_LOAD)", ret);
    SharedLayer l;
    const bpf_program* programs[kPrograms] = {s.progs.socket_create, s.progs.connect4,      s.progs.connect6,
                                              s.progs.sendmsg4,      s.progs.sendmsg6,      s.progs.egress_packet,
                                              s.progs.socket_release};
    for (std::size_t i = 0; i < kPrograms; ++i) l.programs[i] = dup_fd(bpf_program__fd(programs[i]));
    const bpf_map* maps[kMaps] = {s.maps.policy_ref,   s.maps.policy_addresses, s.maps.policy_prefixes,
                                  s.maps.policy_ports, s.maps.policy_counters,  s.maps.policy_events};
    const auto slots = map_slots(l);
    for (std::size_t i = 0; i < kMaps; ++i) *slots[i] = dup_fd(bpf_map__fd(maps[i]));
    return l;
}

// The pinned set of this build, or nullopt when one is missing.
std::optional<SharedLayer> get_pinned(const std::string& dir) {
    SharedLayer l;
    for (std::size_t i = 0; i < kPrograms; ++i) {
        l.programs[i].reset(bpf_obj_get((dir + "/" + kProgramPins[i]).c_str()));
        if (!l.programs[i]) return std::nullopt;
    }
    const auto slots = map_slots(l);
    for (std::size_t i = 0; i < kMaps; ++i) {
        slots[i]->reset(bpf_obj_get((dir + "/" + kMapPins[i]).c_str()));
        if (!*slots[i]) return std::nullopt;
    }
    return l;
}

void pin_all(SharedLayer& l, const std::string& dir) {
    auto pin = [&](int fd, const char* name) {
        const std::string path = dir + "/" + name;
        ::unlink(path.c_str());  // a set left half pinned
        if (const int ret = bpf_obj_pin(fd, path.c_str()); ret != 0) throw_errno("egress: pin " + path + " (bpf BPF_OBJ_PIN)", -ret);
    };
    for (std::size_t i = 0; i < kPrograms; ++i) pin(l.programs[i].get(), kProgramPins[i]);
    const auto slots = map_slots(l);
    for (std::size_t i = 0; i < kMaps; ++i) pin(slots[i]->get(), kMapPins[i]);
}

// Loading and verifying seven programs costs milliseconds of CPU; the first container of a
// build pays it and pins them, the others open the pins. Serialized by a lock on the pin
// directory, so that two creates never pin two sets. Without bpffs every process loads
// its own (the container's maps are then reachable only through its shim).
SharedLayer open_or_load_programs() {
    if (!bpffs_mounted()) return load_programs();
    const std::string dir = build_pin_dir();
    for (const std::string& d : {std::string(kPinRoot), dir})
        if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("egress: make " + d);
    UniqueFd lock(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!lock) throw_errno("egress: open " + dir);
    if (std::optional<SharedLayer> pinned = get_pinned(dir)) return std::move(*pinned);  // the common case
    while (::flock(lock.get(), LOCK_EX) != 0)
        if (errno != EINTR) throw_errno("egress: lock " + dir);
    if (std::optional<SharedLayer> pinned = get_pinned(dir)) return std::move(*pinned);
    SharedLayer l = load_programs();
    pin_all(l, dir);
    return l;
}

// Once per process (create makes one layer; tests make many).
const SharedLayer& shared_layer() {
    static std::mutex m;
    static std::optional<SharedLayer> layer;
    std::lock_guard lock(m);
    if (!layer) layer = open_or_load_programs();
    return *layer;
}

// The type of a map fd (0 when it is none).
std::uint32_t map_type_of(int fd) {
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.type;
}

UniqueFd make_inner_map(bpf_map_type type, const char* name, std::uint32_t key_size, std::uint32_t value_size,
                        std::uint32_t max_entries, std::uint32_t flags) {
    return cb::create_map(type, name, key_size, value_size, max_entries, flags, std::string("egress: make the ") + name + " map");
}


// The kernel switches each cgroup hook on (a static key: code patched on every CPU, a few
// milliseconds here) when the first program of its type is attached anywhere, and off
// when the last goes. So that containers coming and going one at a time do not pay that
// twice each, the programs stay attached to an empty cgroup of their own at the root of
// the cgroup2 hierarchy; no process ever runs there, so they never run for it. Best
// effort: a failure here costs time, never enforcement.
constexpr const char* kWarmHooksCgroup = "sandlock-runc.hooks";
constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

std::string cgroup2_root_of(const std::string& dir) {
    std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
    while (p.has_parent_path() && p.parent_path() != p) {
        struct statfs st{};
        if (::statfs(p.parent_path().c_str(), &st) != 0 || st.f_type != kCgroup2Magic) break;
        p = p.parent_path();
    }
    return p.string();
}

void keep_hooks_switched_on(const SharedLayer& shared, const std::string& container_dir) noexcept {
    try {
        const std::string dir = cgroup2_root_of(container_dir) + "/" + kWarmHooksCgroup;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return;
        const UniqueFd cgroup = cb::open_dir(dir, "egress");
        const auto& types = kernel_layer_attach_types();
        for (std::size_t i = 0; i < types.size(); ++i)
            if (cb::attached(cgroup.get(), types[i], "egress").empty())
                cb::attach(shared.programs[i].get(), cgroup.get(), types[i], 0, "egress");
    } catch (const Error&) {
    }
}

// Removes a container's entries from one set of outer maps (kMapPins[1..]); true if any
// was there.
bool forget_in(const std::array<int, kMaps - 1>& outer, std::uint64_t id) noexcept {
    bool any = false;
    for (const int fd : outer) any |= bpf_map_delete_elem(fd, &id) == 0;
    return any;
}

std::array<int, kMaps - 1> outer_maps(const SharedLayer& l) {
    return {l.addresses.get(), l.prefixes.get(), l.ports.get(), l.counters.get(), l.events.get()};
}

}  // namespace

// ---- rows

std::vector<RuleRow> rule_rows(const ResolvedPolicy& policy) {
    std::vector<RuleRow> rows;
    std::size_t count = 0;
    for (const Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp}) {
        const ProtocolRules& r = policy.rules(protocol);
        count += 2 + r.per_ip.size() + r.per_net.size();
    }
    rows.reserve(count);
    for (const Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp}) {
        const ProtocolRules& r = policy.rules(protocol);
        if (r.any_ip_all_ports) rows.push_back({protocol, std::nullopt, true, {}});
        if (!r.any_ip_ports.empty()) rows.push_back({protocol, std::nullopt, false, r.any_ip_ports});
        for (const auto& e : r.per_ip) rows.push_back({protocol, Cidr::single(e.address), e.all_ports, e.ports});
        for (const auto& e : r.per_net) rows.push_back({protocol, e.network, e.all_ports, e.ports});
    }
    return rows;
}

std::uint64_t KernelCounters::allowed() const {
    std::uint64_t n = no_rule.allowed + loopback.allowed + open.allowed + no_address.allowed + revoked_rules.allowed;
    for (const auto& r : rules) n += r.allowed;
    return n;
}

std::uint64_t KernelCounters::denied() const {
    std::uint64_t n =
        no_rule.denied + loopback.denied + open.denied + revoked_rules.denied + refused_sockets + routed_packets;
    for (const auto& r : rules) n += r.denied;
    return n;
}

const char* to_string(KernelEvent::Hook h) {
    switch (h) {
        case KernelEvent::Hook::Connect: return "connect";
        case KernelEvent::Hook::Sendmsg: return "sendmsg";
        case KernelEvent::Hook::Packet: return "packet";
    }
    return "?";
}

// ---- the layer

namespace {

// Live changes (replace): a container's entries in the outer maps are keyed by its cgroup id
// in the low bits and the policy's version in the high ones; version 0 is create's.
constexpr unsigned kVersionShift = 40;
constexpr std::uint64_t kCgroupIdMask = (std::uint64_t{1} << kVersionShift) - 1;
constexpr std::uint64_t kMaxVersion = (std::uint64_t{1} << (64 - kVersionShift)) - 1;

// One version of a container's policy: its inner maps but the events ring (the
// container's for its whole life), and the rows its counter slots stand for.
struct PolicyMaps {
    Mode mode = Mode::Open;
    sl_config config{};
    std::vector<RuleRow> rows;
    UniqueFd addresses, prefixes, ports, counters;
};

PolicyMaps make_policy_maps(const ResolvedPolicy& policy) {
    PolicyMaps m;
    m.rows = rule_rows(policy);
    const MapContents contents = map_contents(policy, m.rows);
    m.mode = policy.mode;
    m.config = contents.config;
    // Sizes as the templates in egress.bpf.c; a hash map allocates its bucket array at
    // creation, so the ports map is sized to this policy.
    const std::size_t port_room = std::max<std::size_t>(1024, 2 * contents.port_keys.size());
    const std::size_t address_room = std::max<std::size_t>(64, 2 * contents.address_keys.size());
    m.addresses = make_inner_map(BPF_MAP_TYPE_HASH, "addresses", sizeof(sl_address_key), sizeof(sl_prefix_value),
                                 static_cast<std::uint32_t>(std::min<std::size_t>(address_room, SL_MAX_PREFIXES)),
                                 BPF_F_NO_PREALLOC);
    m.prefixes = make_inner_map(BPF_MAP_TYPE_LPM_TRIE, "prefixes", sizeof(sl_prefix_key), sizeof(sl_prefix_value),
                                SL_MAX_PREFIXES, BPF_F_NO_PREALLOC);
    m.ports = make_inner_map(BPF_MAP_TYPE_HASH, "ports", sizeof(sl_port_key), sizeof(std::uint32_t),
                             static_cast<std::uint32_t>(std::min<std::size_t>(port_room, SL_MAX_PORTS)), BPF_F_NO_PREALLOC);
    const std::uint32_t slots = SL_SLOT_FIRST_RULE + static_cast<std::uint32_t>(m.rows.size());
    // Preallocated (made in one go with the map); the programs make each slot on its first use.
    m.counters = make_inner_map(BPF_MAP_TYPE_PERCPU_HASH, "counters", sizeof(std::uint32_t), sizeof(sl_counter), slots, 0);
    update_all(m.addresses.get(), contents.address_keys, contents.address_values, "addresses");
    update_all(m.prefixes.get(), contents.prefix_keys, contents.prefix_values, "prefixes");
    update_all(m.ports.get(), contents.port_keys, contents.port_values, "ports");
    return m;
}

// Registers a version's maps (and the events ring) under id in the outer maps; all or none.
void register_maps(const SharedLayer& shared, std::uint64_t id, const PolicyMaps& m, int events) {
    const std::pair<int, int> entries[] = {{shared.addresses.get(), m.addresses.get()},
                                           {shared.prefixes.get(), m.prefixes.get()},
                                           {shared.ports.get(), m.ports.get()},
                                           {shared.counters.get(), m.counters.get()},
                                           {shared.events.get(), events}};
    for (const auto& [outer, inner] : entries) {
        const std::uint32_t fd = static_cast<std::uint32_t>(inner);
        if (const int ret = bpf_map_update_elem(outer, &id, &fd, BPF_ANY); ret != 0) {
            forget_in(outer_maps(shared), id);
            throw_errno("egress: register the container's maps (bpf BPF_MAP_UPDATE_ELEM)", -ret);
        }
    }
}

// Every verdict counted in a counters map of rule_count rules.
KernelCounters read_counters(int counters_fd, std::size_t rule_count) {
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) throw_errno("egress: count the possible CPUs", -ncpu);
    const std::uint32_t slots = SL_SLOT_FIRST_RULE + static_cast<std::uint32_t>(rule_count);
    // Every slot's per-CPU values in one call (BPF_MAP_LOOKUP_BATCH), slot by slot if the
    // kernel has no batch for the map.
    std::vector<std::uint32_t> keys(slots);
    std::vector<sl_counter> values(static_cast<std::size_t>(slots) * static_cast<std::size_t>(ncpu));
    std::uint32_t got = 0, batch = 0;
    bool first = true;
    int ret = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    while (got < slots) {
        std::uint32_t count = slots - got;
        ret = bpf_map_lookup_batch(counters_fd, first ? nullptr : &batch, &batch, &keys[got],
                                   &values[static_cast<std::size_t>(got) * ncpu], &count, &opts);
        first = false;
        got += count;
        if (ret != 0) break;  // -ENOENT: the end
    }
    // A slot no verdict reached yet is not in the map (zero). Without batch lookups: slot by slot.
    if (ret != 0 && ret != -ENOENT) {
        got = 0;
        for (std::uint32_t slot = 0; slot < slots; ++slot) {
            const int r = bpf_map_lookup_elem(counters_fd, &slot, &values[static_cast<std::size_t>(got) * ncpu]);
            if (r == -ENOENT) continue;
            if (r != 0) throw_errno("egress: read the kernel's counters (bpf BPF_MAP_LOOKUP_ELEM)", -r);
            keys[got++] = slot;
        }
    }
    std::vector<KernelCounters::Pair> sums(slots);
    for (std::uint32_t i = 0; i < got; ++i) {
        if (keys[i] >= slots) continue;
        for (int cpu = 0; cpu < ncpu; ++cpu) {
            const sl_counter& c = values[static_cast<std::size_t>(i) * ncpu + cpu];
            sums[keys[i]].allowed += c.allowed;
            sums[keys[i]].denied += c.denied;
        }
    }
    KernelCounters out;
    out.no_rule = sums[SL_SLOT_NO_RULE];
    out.loopback = sums[SL_SLOT_LOOPBACK];
    out.open = sums[SL_SLOT_OPEN];
    out.no_address = sums[SL_SLOT_NO_ADDRESS];
    out.refused_sockets = sums[SL_SLOT_SOCKET].denied;
    out.routed_packets = sums[SL_SLOT_ROUTING].denied;
    out.lost_events = sums[SL_SLOT_LOST].denied;
    out.rules.assign(sums.begin() + SL_SLOT_FIRST_RULE, sums.end());
    return out;
}

void add(KernelCounters::Pair& into, const KernelCounters::Pair& p) {
    into.allowed += p.allowed;
    into.denied += p.denied;
}

// Adds `from` (counted under from_rows) to `into` (under into_rows): a rule both have keeps
// its count; one into_rows lacks is appended when `append`, else counted as revoked.
void absorb(KernelCounters& into, std::vector<RuleRow>& into_rows, const KernelCounters& from,
            const std::vector<RuleRow>& from_rows, bool append) {
    add(into.no_rule, from.no_rule);
    add(into.loopback, from.loopback);
    add(into.open, from.open);
    add(into.no_address, from.no_address);
    add(into.revoked_rules, from.revoked_rules);
    into.refused_sockets += from.refused_sockets;
    into.routed_packets += from.routed_packets;
    into.lost_events += from.lost_events;
    for (std::size_t i = 0; i < from.rules.size() && i < from_rows.size(); ++i) {
        const auto at = std::find(into_rows.begin(), into_rows.end(), from_rows[i]);
        if (at != into_rows.end()) {
            add(into.rules[static_cast<std::size_t>(at - into_rows.begin())], from.rules[i]);
        } else if (append) {
            into_rows.push_back(from_rows[i]);
            into.rules.push_back(from.rules[i]);
        } else {
            add(into.revoked_rules, from.rules[i]);
        }
    }
}

}  // namespace

struct KernelLayer::Impl {
    PolicyMaps current;
    UniqueFd events;  // the container's ring buffer, shared by every version
    const SharedLayer* shared = nullptr;
    std::optional<SharedLayer> adopted_tables;  // the shim's: the tables create handed over
    std::uint64_t id = 0;       // after register_for/attach_programs: the current version's key in the outer maps
    bool registered = false;    // the maps are in the outer maps under id
    bool attached = false;      // the programs are attached to the cgroup of id
    std::uint64_t version = 0;  // id >> kVersionShift
    // The version a replace() switched away from: registered until the next one, so that
    // a program that read its id just before the switch still finds its maps.
    struct Retired {
        std::uint64_t id = 0;
        PolicyMaps maps;
    };
    std::optional<Retired> retired;
    // What the versions before the retired one counted, under the union of their rows.
    KernelCounters archived;
    std::vector<RuleRow> archived_rows;
    ring_buffer* ring = nullptr;
    const std::function<void(const KernelEvent&)>* sink = nullptr;

    ~Impl() {
        if (ring) ring_buffer__free(ring);
        // The container is going (its shim stops at delete): its entries go too. The
        // programs then deny whatever is left in the cgroup.
        if (!shared) return;
        if (registered) forget_in(outer_maps(*shared), id);
        if (retired) forget_in(outer_maps(*shared), retired->id);
    }

    // The retired version's last counts into the archive; its entries out of the tables.
    void drop_retired() {
        if (!retired) return;
        try {
            absorb(archived, archived_rows, read_counters(retired->maps.counters.get(), retired->maps.rows.size()),
                   retired->maps.rows, true);
        } catch (const Error& e) {
            log::warn(std::string("egress: the counters of a replaced policy are lost: ") + e.what());
        }
        forget_in(outer_maps(*shared), retired->id);
        retired.reset();
    }
};

KernelLayer::KernelLayer(const ResolvedPolicy& policy) : impl_(std::make_unique<Impl>()) {
    quiet_libbpf();
    take_libbpf_reason();  // forget what an earlier load said
    // The policy's maps first: one too large for them fails before anything is loaded or pinned.
    impl_->current = make_policy_maps(policy);
    impl_->shared = &shared_layer();
    impl_->events = make_inner_map(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, events_ring_bytes(policy.audit), 0);
}

KernelLayer::KernelLayer() : impl_(std::make_unique<Impl>()) {}

KernelLayer::Handover KernelLayer::handover() const {
    if (!impl_->attached || !impl_->registered || !impl_->shared)
        throw Error("egress: the kernel layer is not attached and registered (internal error)");
    const PolicyMaps& m = impl_->current;
    const SharedLayer& t = *impl_->shared;
    return {impl_->id,
            {m.addresses.get(), m.prefixes.get(), m.ports.get(), m.counters.get(), impl_->events.get(),
             t.policy_ref.get(), t.addresses.get(), t.prefixes.get(), t.ports.get(), t.counters.get(), t.events.get()}};
}

void KernelLayer::handed_over() {
    impl_->id = 0;
    impl_->registered = false;
    impl_->attached = false;
}

KernelLayer KernelLayer::adopt(const ResolvedPolicy& policy, std::uint64_t id, std::vector<UniqueFd> maps) {
    constexpr bpf_map_type kTypes[kHandoverFds] = {
        BPF_MAP_TYPE_HASH,           BPF_MAP_TYPE_LPM_TRIE,       BPF_MAP_TYPE_HASH,
        BPF_MAP_TYPE_PERCPU_HASH,    BPF_MAP_TYPE_RINGBUF,        BPF_MAP_TYPE_CGROUP_STORAGE,
        BPF_MAP_TYPE_HASH_OF_MAPS,   BPF_MAP_TYPE_HASH_OF_MAPS,   BPF_MAP_TYPE_HASH_OF_MAPS,
        BPF_MAP_TYPE_HASH_OF_MAPS,   BPF_MAP_TYPE_HASH_OF_MAPS};
    if (id == 0 || maps.size() != kHandoverFds)
        throw Error("egress: the kernel layer's handover needs an id and " + std::to_string(kHandoverFds) + " maps");
    for (std::size_t i = 0; i < maps.size(); ++i)
        if (map_type_of(maps[i].get()) != static_cast<std::uint32_t>(kTypes[i]))
            throw Error("egress: the kernel layer's handover: fd " + std::to_string(i + 1) + " is not the expected map");
    KernelLayer layer;
    Impl& impl = *layer.impl_;
    SharedLayer& tables = impl.adopted_tables.emplace();
    tables.policy_ref = std::move(maps[5]);
    tables.addresses = std::move(maps[6]);
    tables.prefixes = std::move(maps[7]);
    tables.ports = std::move(maps[8]);
    tables.counters = std::move(maps[9]);
    tables.events = std::move(maps[10]);
    impl.shared = &tables;
    impl.current.mode = policy.mode;
    impl.current.rows = rule_rows(policy);
    impl.current.config = config_of(policy);
    impl.current.addresses = std::move(maps[0]);
    impl.current.prefixes = std::move(maps[1]);
    impl.current.ports = std::move(maps[2]);
    impl.current.counters = std::move(maps[3]);
    impl.events = std::move(maps[4]);
    impl.id = id;
    impl.registered = true;
    impl.attached = true;
    impl.version = id >> kVersionShift;
    return layer;
}

void KernelLayer::replace(const ResolvedPolicy& next) {
    Impl& im = *impl_;
    if (!im.attached || !im.registered || !im.shared)
        throw Error("egress: the kernel layer is not attached and registered (internal error)");
    if (im.version == kMaxVersion) throw Error("egress: this container's policy has changed too often");
    // The version before the current one has been out of use since the last switch.
    im.drop_retired();
    PolicyMaps next_maps = make_policy_maps(next);
    const std::uint64_t cgroup = im.id & kCgroupIdMask;
    const std::uint64_t next_id = policy_key(cgroup, im.version + 1);
    register_maps(*im.shared, next_id, next_maps, im.events.get());
    // The switch: one update of the cgroup's storage, whose value the kernel replaces as a
    // whole (a new buffer swapped in under RCU), so that each program run reads the old
    // id and settings or the new ones, never a mix, and never nothing.
    const sl_policy_ref ref{next_id, next_maps.config};
    if (const int ret = bpf_map_update_elem(im.shared->policy_ref.get(), &cgroup, &ref, BPF_EXIST); ret != 0) {
        forget_in(outer_maps(*im.shared), next_id);
        throw_errno("egress: switch the container's policy (bpf BPF_MAP_UPDATE_ELEM policy_ref)", -ret);
    }
    im.retired = Impl::Retired{im.id, std::move(im.current)};
    im.current = std::move(next_maps);
    im.id = next_id;
    im.version += 1;
}

std::uint64_t KernelLayer::version() const { return impl_->version; }

KernelLayer::~KernelLayer() = default;
KernelLayer::KernelLayer(KernelLayer&&) noexcept = default;
KernelLayer& KernelLayer::operator=(KernelLayer&&) noexcept = default;

namespace {

// The container's key in the tables: its cgroup's id (version 0); a layer keyed already
// (by register_for or attach_programs) takes no other.
std::uint64_t key_for(std::uint64_t keyed, const std::string& cgroup_dir) {
    const std::uint64_t id = cgroup_id_of(cgroup_dir);
    if (keyed != 0 && keyed != id)
        throw Error("egress: the kernel layer was registered for another cgroup than " + cgroup_dir +
                    " (internal error)");
    return id;
}

}  // namespace

void KernelLayer::register_for(const std::string& cgroup_dir) {
    if (impl_->registered) throw Error("egress: the kernel layer is registered already (internal error)");
    const std::uint64_t id = key_for(impl_->id, cgroup_dir);
    register_maps(*impl_->shared, id, impl_->current, impl_->events.get());
    impl_->id = id;  // from here the destructor removes the entries
    impl_->registered = true;
}

void KernelLayer::attach(const std::string& cgroup_dir) {
    if (!impl_->registered) register_for(cgroup_dir);
    attach_programs(cgroup_dir);
}

void KernelLayer::attach_programs(const std::string& cgroup_dir) {
    if (impl_->attached) throw Error("egress: the kernel layer is attached already (internal error)");
    const std::uint64_t id = key_for(impl_->id, cgroup_dir);
    const UniqueFd cgroup = cb::open_dir(cgroup_dir, "egress");
    const SharedLayer& shared = *impl_->shared;
    keep_hooks_switched_on(shared, cgroup_dir);
    // The programs first (their storage starts at id 0: deny), then the id and config
    // into the storage: from here the registered maps (or none yet: deny) decide.
    std::vector<std::pair<int, bpf_attach_type>> attached;
    try {
        const auto& types = kernel_layer_attach_types();
        for (std::size_t i = 0; i < types.size(); ++i) {
            // flags 0: no override, so nothing may be attached below the container's cgroup
            cb::attach(shared.programs[i].get(), cgroup.get(), types[i], 0,
                       std::string("egress: attach the cgroup ") + hook_name(types[i]) + " program to " + cgroup_dir);
            attached.emplace_back(shared.programs[i].get(), types[i]);
        }
        const sl_policy_ref ref{id, impl_->current.config};
        if (const int ret = bpf_map_update_elem(shared.policy_ref.get(), &id, &ref, BPF_ANY); ret != 0)
            throw_errno("egress: set the container's policy (bpf BPF_MAP_UPDATE_ELEM policy_ref)", -ret);
    } catch (const Error&) {
        for (const auto& [fd, type] : attached) cb::detach_fd(fd, cgroup.get(), type);
        if (impl_->registered) forget_in(outer_maps(shared), id);
        impl_->id = 0;
        impl_->registered = false;
        throw;
    }
    impl_->id = id;
    impl_->attached = true;
}

KernelCounters KernelLayer::counters() const {
    const Impl& im = *impl_;
    KernelCounters out = read_counters(im.current.counters.get(), im.current.rows.size());
    std::vector<RuleRow> rows = im.current.rows;
    absorb(out, rows, im.archived, im.archived_rows, false);
    if (im.retired)
        absorb(out, rows, read_counters(im.retired->maps.counters.get(), im.retired->maps.rows.size()),
               im.retired->maps.rows, false);
    return out;
}

namespace {

Reason reason_of(Mode mode, std::uint32_t slot) {
    if (slot == SL_SLOT_LOOPBACK) return Reason::Loopback;
    if (slot == SL_SLOT_OPEN) return Reason::Open;
    const bool rule = slot >= SL_SLOT_FIRST_RULE;
    if (mode == Mode::Deny) return rule ? Reason::DenyRule : Reason::NotDenied;
    return rule ? Reason::AllowRule : Reason::NoAllowRule;
}

Protocol protocol_of(std::uint8_t p) {
    return p == SL_TCP ? Protocol::Tcp : p == SL_UDP ? Protocol::Udp : Protocol::Icmp;
}

}  // namespace

std::size_t KernelLayer::drain_events(const std::function<void(const KernelEvent&)>& fn) {
    if (!impl_->ring) {
        auto on_event = [](void* ctx, void* data, std::size_t size) -> int {
            auto& impl = *static_cast<Impl*>(ctx);
            if (size < sizeof(sl_event) || !impl.sink) return 0;
            sl_event e;
            std::memcpy(&e, data, sizeof e);
            KernelEvent out{};
            out.hook = static_cast<KernelEvent::Hook>(std::min<std::uint8_t>(e.hook, SL_HOOK_PACKET));
            out.pid = static_cast<pid_t>(e.pid);
            out.protocol = protocol_of(e.protocol);
            out.destination.family = e.family == SL_V4 ? IpAddr::Family::V4 : IpAddr::Family::V6;
            std::memcpy(out.destination.bytes.data(), e.addr, e.family == SL_V4 ? 4 : 16);
            out.port = e.port;
            out.allowed = e.allowed != 0;
            // A rule's slot names a row of the version that decided: the current one's, or
            // none (a replaced version's event, read after the switch).
            const bool current = e.version == static_cast<std::uint16_t>(impl.version);
            if (current && e.slot >= SL_SLOT_FIRST_RULE && e.slot - SL_SLOT_FIRST_RULE < impl.current.rows.size())
                out.rule = e.slot - SL_SLOT_FIRST_RULE;
            out.reason = reason_of(impl.current.mode, e.slot);
            (*impl.sink)(out);
            return 0;
        };
        impl_->ring = ring_buffer__new(impl_->events.get(), on_event, impl_.get(), nullptr);
        if (!impl_->ring) throw_errno("egress: read the kernel's events (libbpf ring_buffer__new)");
    }
    impl_->sink = &fn;
    const int n = ring_buffer__consume(impl_->ring);
    impl_->sink = nullptr;
    if (n < 0) throw_errno("egress: read the kernel's events", -n);
    return static_cast<std::size_t>(n);
}

int KernelLayer::events_fd() const { return impl_->events.get(); }

// ---- attachments

const std::vector<bpf_attach_type>& kernel_layer_attach_types() {
    static const std::vector<bpf_attach_type> types = {BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_INET4_CONNECT,
                                                       BPF_CGROUP_INET6_CONNECT,    BPF_CGROUP_UDP4_SENDMSG,
                                                       BPF_CGROUP_UDP6_SENDMSG,     BPF_CGROUP_INET_EGRESS,
                                                       BPF_CGROUP_INET_SOCK_RELEASE};
    return types;
}

std::vector<std::uint32_t> attached_programs(const std::string& dir, bpf_attach_type type) {
    return cb::attached(cb::open_dir(dir, "egress").get(), type,
                        std::string("egress: list the cgroup ") + hook_name(type) + " programs");
}

void detach_kernel_layer(const std::string& dir) {
    const UniqueFd cgroup = cb::open_dir(dir, "egress");
    for (const auto type : kernel_layer_attach_types())
        for (const std::uint32_t id : attached_programs(dir, type))
            cb::detach(cgroup.get(), id, type, std::string("egress: detach the cgroup ") + hook_name(type) + " program from " + dir);
}

std::uint64_t cgroup_id_of(const std::string& dir) {
    struct {
        file_handle handle;
        std::uint64_t id;
    } h{};
    h.handle.handle_bytes = sizeof h.id;
    int mount_id = 0;
    if (::name_to_handle_at(AT_FDCWD, dir.c_str(), &h.handle, &mount_id, 0) != 0)
        throw_errno("egress: the cgroup id of " + dir + " (name_to_handle_at)");
    std::uint64_t id = 0;
    std::memcpy(&id, h.handle.f_handle, sizeof id);
    if (id == 0) throw Error("egress: the cgroup " + dir + " has id 0");
    return id;
}

std::string kernel_tables() { return bpffs_mounted() ? build_pin_dir() : ""; }

std::uint64_t policy_key(std::uint64_t cgroup_id, std::uint64_t version) {
    return (version << kVersionShift) | (cgroup_id & kCgroupIdMask);
}

namespace {

// The container's keys in one table: every version of it (a walk of the table: ~0.3 ms
// for its 65536 buckets), or the last version and the two before it.
std::vector<std::uint64_t> keys_of(int outer, std::uint64_t cgroup, std::optional<std::uint64_t> last_version) {
    std::vector<std::uint64_t> keys;
    if (last_version) {
        const std::uint64_t last = std::min(*last_version, kMaxVersion);
        for (std::uint64_t v = last >= 2 ? last - 2 : 0; v <= last; ++v) keys.push_back(policy_key(cgroup, v));
        return keys;
    }
    std::uint64_t key = 0;
    bool first = true;
    while (bpf_map_get_next_key(outer, first ? nullptr : &key, &key) == 0) {
        first = false;
        if ((key & kCgroupIdMask) == cgroup) keys.push_back(key);
    }
    return keys;
}

void forget_in_set(const std::string& dir, std::uint64_t cgroup, std::optional<std::uint64_t> last_version) {
    for (std::size_t i = 1; i < kMaps; ++i) {
        const UniqueFd outer(bpf_obj_get((dir + "/" + kMapPins[i]).c_str()));
        if (!outer) continue;
        for (const auto key : keys_of(outer.get(), cgroup, last_version)) bpf_map_delete_elem(outer.get(), &key);
    }
}

}  // namespace

void forget_kernel_policy(const std::string& cgroup_dir, const KernelEntries& where) noexcept {
    std::uint64_t cgroup = 0;
    try {
        cgroup = cgroup_id_of(cgroup_dir);
    } catch (const Error&) {
        return;  // no cgroup: nothing was registered under it
    }
    try {
        if (where.tables) {
            // One set, one delete a table and version: ~20 calls where searching every
            // build's set cost milliseconds on a host that had seen many builds.
            if (!where.tables->empty()) forget_in_set(*where.tables, cgroup, where.last_version);
            return;
        }
        // An older build's container: create's version in every build's pinned set; the
        // versions of live changes exist only in tables of builds that make them, and
        // those record where they are, so this build's set is walked only for safety.
        const std::string own = kernel_tables();
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(kPinRoot, ec)) {
            const std::string dir = entry.path().string();
            forget_in_set(dir, cgroup, dir == own ? where.last_version : std::optional<std::uint64_t>(0));
        }
    } catch (const std::exception&) {
        // a failed allocation: the entries stay, harmless (a cgroup id is never reused)
    }
}

void forget_kernel_policy(const std::string& cgroup_dir) noexcept { forget_kernel_policy(cgroup_dir, KernelEntries{}); }

// ---- create's decision

const char* to_string(Enforcement e) { return e == Enforcement::Kernel ? "kernel" : "supervisor"; }

std::optional<Enforcement> enforcement_from_string(const std::string& s) {
    if (s == "kernel") return Enforcement::Kernel;
    if (s == "supervisor") return Enforcement::Supervisor;
    return std::nullopt;
}

KernelLayerTarget kernel_layer_target(const std::map<std::string, std::string>& cgroup_dirs) {
    if (const char* v = std::getenv(kTestNoKernelLayerEnv); v && *v)
        return {"", std::string("the kernel layer is switched off for a test (") + kTestNoKernelLayerEnv + ")"};
    const auto it = cgroup_dirs.find("");
    if (it == cgroup_dirs.end() || it->second.empty())
        return {"", "the container has no cgroup2 directory for the kernel's egress programs"};
    return {it->second, ""};
}

Enforcement choose_enforcement(const std::string& why, bool supervisor_allowed) {
    if (why.empty()) return Enforcement::Kernel;
    std::string reason = why;
    if (reason.starts_with("egress: ")) reason.erase(0, 8);
    if (!supervisor_allowed)
        throw Error("egress: " + reason +
                    "; refusing to run the policy without the kernel layer (to let the seccomp supervisor "
                    "enforce it alone: --supervisor-mode=allow or SANDLOCK_RUNC_SUPERVISOR_MODE=allow)");
    log::warn("egress: " + reason + "; supervisor mode: the seccomp supervisor enforces the policy alone");
    return Enforcement::Supervisor;
}

}  // namespace sandlock::egress

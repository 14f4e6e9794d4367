// Loading the egress programs with libbpf, filling their maps from a ResolvedPolicy, and
// reading their counters and events. The programs' logic is in bpf/egress.bpf.c.
#include "runtime/egress/kernel_layer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
    std::vector<sl_prefix_key> prefix_keys;
    std::vector<sl_prefix_value> prefix_values;
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
    // address contains only itself.
    std::vector<IndexedRule> wide;
    std::map<Cidr, IndexedRule> single;
    for (const auto& r : rules) {
        if (r.row->where && r.row->where->is_single())
            single.emplace(*r.row->where, r);
        else
            wide.push_back(r);
    }
    std::stable_sort(wide.begin(), wide.end(), [](const IndexedRule& a, const IndexedRule& b) {
        return specificity(*a.row) > specificity(*b.row);
    });

    for (const Cidr& prefix : prefixes) {
        std::vector<IndexedRule> covering;  // most specific first
        if (const auto it = single.find(prefix); it != single.end()) covering.push_back(it->second);
        for (const auto& r : wide)
            if (covers(*r.row, prefix)) covering.push_back(r);

        sl_prefix_value value{static_cast<std::uint32_t>(out.prefix_keys.size()), SL_NO_SLOT};
        for (const auto& r : covering)
            if (r.row->all_ports) {
                value.all_ports_slot = r.slot;
                break;
            }
        out.prefix_keys.push_back(key_of(protocol, prefix));
        out.prefix_values.push_back(value);
        if (value.all_ports_slot != SL_NO_SLOT) continue;
        std::map<std::uint16_t, std::uint32_t> ports;  // port -> slot, the first (most specific) wins
        for (const auto& r : covering)
            for (const auto port : r.row->ports) ports.emplace(port, r.slot);
        for (const auto& [port, slot] : ports) {
            out.port_keys.push_back({value.entry, port});
            out.port_values.push_back(slot);
        }
    }
}

MapContents map_contents(const ResolvedPolicy& policy, const std::vector<RuleRow>& rows) {
    MapContents out;
    out.config.mode = mode_code(policy.mode);
    out.config.loopback_allowed = policy.loopback == Loopback::Allow ? 1 : 0;
    out.config.audit = audit_code(policy.audit);
    for (const Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp}) {
        std::vector<IndexedRule> rules;
        for (std::size_t i = 0; i < rows.size(); ++i)
            if (rows[i].protocol == protocol)
                rules.push_back({&rows[i], static_cast<std::uint32_t>(SL_SLOT_FIRST_RULE + i)});
        add_protocol(out, protocol, rules);
    }
    if (out.prefix_keys.size() > SL_MAX_PREFIXES || out.port_keys.size() > SL_MAX_PORTS)
        throw Error("egress: the policy is too large for the kernel's maps (" + std::to_string(out.prefix_keys.size()) +
                    " prefixes, " + std::to_string(out.port_keys.size()) + " address and port pairs; at most " +
                    std::to_string(SL_MAX_PREFIXES) + " and " + std::to_string(SL_MAX_PORTS) + ")");
    return out;
}

void update(int map_fd, const void* key, const void* value, const char* map) {
    if (const int ret = bpf_map_update_elem(map_fd, key, value, BPF_ANY); ret != 0)
        throw_errno(std::string("egress: fill the ") + map + " map (bpf BPF_MAP_UPDATE_ELEM)", -ret);
}

// Many entries in one call where the kernel has batch updates for the map type.
template <typename K, typename V>
void update_all(int map_fd, const std::vector<K>& keys, const std::vector<V>& values, const char* map) {
    if (keys.empty()) return;
    std::uint32_t count = static_cast<std::uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    const int ret = bpf_map_update_batch(map_fd, keys.data(), values.data(), &count, &opts);
    if (ret == 0 && count == keys.size()) return;
    constexpr int kEnotsupp = 524;  // the kernel's ENOTSUPP: no batch operation for this map type
    if (ret != 0 && ret != -EINVAL && ret != -kEnotsupp && ret != -EOPNOTSUPP)
        throw_errno(std::string("egress: fill the ") + map + " map (bpf BPF_MAP_UPDATE_BATCH)", -ret);
    for (std::size_t i = ret == 0 ? count : 0; i < keys.size(); ++i) update(map_fd, &keys[i], &values[i], map);
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
        case BPF_CGROUP_INET_EGRESS: return "inet_egress";
        default: return "cgroup";
    }
}

struct SkeletonDeleter {
    void operator()(egress_bpf* s) const { egress_bpf__destroy(s); }
};

}  // namespace

// ---- rows

std::vector<RuleRow> rule_rows(const ResolvedPolicy& policy) {
    std::vector<RuleRow> rows;
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
    std::uint64_t n = no_rule.allowed + loopback.allowed + open.allowed + no_address.allowed;
    for (const auto& r : rules) n += r.allowed;
    return n;
}

std::uint64_t KernelCounters::denied() const {
    std::uint64_t n = no_rule.denied + loopback.denied + open.denied + refused_sockets + routed_packets;
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

struct KernelLayer::Impl {
    Mode mode;
    std::size_t rule_count;
    std::unique_ptr<egress_bpf, SkeletonDeleter> skeleton;  // until attach()
    UniqueFd config, prefixes, ports, counters, events;
    ring_buffer* ring = nullptr;
    const std::function<void(const KernelEvent&)>* sink = nullptr;

    ~Impl() {
        if (ring) ring_buffer__free(ring);
    }
};

KernelLayer::KernelLayer(const ResolvedPolicy& policy) : impl_(std::make_unique<Impl>()) {
    quiet_libbpf();
    take_libbpf_reason();  // forget what an earlier load said
    const std::vector<RuleRow> rows = rule_rows(policy);
    const MapContents contents = map_contents(policy, rows);
    impl_->mode = policy.mode;
    impl_->rule_count = rows.size();

    impl_->skeleton.reset(egress_bpf__open());
    if (!impl_->skeleton) throw_libbpf("open the programs' object (libbpf)", -errno);
    egress_bpf& s = *impl_->skeleton;
    if (const int ret = bpf_map__set_max_entries(s.maps.counters, SL_SLOT_FIRST_RULE + static_cast<std::uint32_t>(rows.size()));
        ret != 0)
        throw_libbpf("size the counters map", ret);
    // A hash map allocates its bucket array at creation, even without preallocated
    // elements: sized to this policy (with room for live changes), not to the maximum.
    const std::size_t port_room = std::max<std::size_t>(1024, 2 * contents.port_keys.size());
    if (const int ret = bpf_map__set_max_entries(s.maps.ports, static_cast<std::uint32_t>(std::min<std::size_t>(port_room, SL_MAX_PORTS)));
        ret != 0)
        throw_libbpf("size the ports map", ret);
    if (const int ret = egress_bpf__load(&s); ret != 0) throw_libbpf("load the cgroup programs (bpf BPF_PROG_LOAD)", ret);

    const std::uint32_t zero = 0;
    update(bpf_map__fd(s.maps.config), &zero, &contents.config, "config");
    update_all(bpf_map__fd(s.maps.prefixes), contents.prefix_keys, contents.prefix_values, "prefixes");
    update_all(bpf_map__fd(s.maps.ports), contents.port_keys, contents.port_values, "ports");
    impl_->config = dup_fd(bpf_map__fd(s.maps.config));
    impl_->prefixes = dup_fd(bpf_map__fd(s.maps.prefixes));
    impl_->ports = dup_fd(bpf_map__fd(s.maps.ports));
    impl_->counters = dup_fd(bpf_map__fd(s.maps.counters));
    impl_->events = dup_fd(bpf_map__fd(s.maps.events));
}

KernelLayer::~KernelLayer() = default;
KernelLayer::KernelLayer(KernelLayer&&) noexcept = default;
KernelLayer& KernelLayer::operator=(KernelLayer&&) noexcept = default;

void KernelLayer::attach(const std::string& cgroup_dir) {
    if (!impl_->skeleton) throw Error("egress: the kernel layer is attached already (internal error)");
    const UniqueFd cgroup = cb::open_dir(cgroup_dir, "egress");
    egress_bpf& s = *impl_->skeleton;
    const std::pair<bpf_program*, bpf_attach_type> programs[] = {
        {s.progs.socket_create, BPF_CGROUP_INET_SOCK_CREATE}, {s.progs.connect4, BPF_CGROUP_INET4_CONNECT},
        {s.progs.connect6, BPF_CGROUP_INET6_CONNECT},         {s.progs.sendmsg4, BPF_CGROUP_UDP4_SENDMSG},
        {s.progs.sendmsg6, BPF_CGROUP_UDP6_SENDMSG},          {s.progs.egress_packet, BPF_CGROUP_INET_EGRESS},
    };
    std::vector<std::pair<int, bpf_attach_type>> attached;
    try {
        for (const auto& [prog, type] : programs) {
            // flags 0: no override, so nothing may be attached below the container's cgroup
            cb::attach(bpf_program__fd(prog), cgroup.get(), type, 0,
                       std::string("egress: attach the cgroup ") + hook_name(type) + " program to " + cgroup_dir);
            attached.emplace_back(bpf_program__fd(prog), type);
        }
    } catch (const Error&) {
        for (const auto& [fd, type] : attached) cb::detach_fd(fd, cgroup.get(), type);
        throw;
    }
    // The cgroup holds the programs now, and they the maps: our program fds can go.
    impl_->skeleton.reset();
}

KernelCounters KernelLayer::counters() const {
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) throw_errno("egress: count the possible CPUs", -ncpu);
    std::vector<sl_counter> per_cpu(static_cast<std::size_t>(ncpu));
    auto read = [&](std::uint32_t slot) {
        if (const int ret = bpf_map_lookup_elem(impl_->counters.get(), &slot, per_cpu.data()); ret != 0)
            throw_errno("egress: read the kernel's counters (bpf BPF_MAP_LOOKUP_ELEM)", -ret);
        KernelCounters::Pair sum;
        for (const auto& c : per_cpu) {
            sum.allowed += c.allowed;
            sum.denied += c.denied;
        }
        return sum;
    };
    KernelCounters out;
    out.no_rule = read(SL_SLOT_NO_RULE);
    out.loopback = read(SL_SLOT_LOOPBACK);
    out.open = read(SL_SLOT_OPEN);
    out.no_address = read(SL_SLOT_NO_ADDRESS);
    out.refused_sockets = read(SL_SLOT_SOCKET).denied;
    out.routed_packets = read(SL_SLOT_ROUTING).denied;
    out.lost_events = read(SL_SLOT_LOST).denied;
    for (std::size_t i = 0; i < impl_->rule_count; ++i)
        out.rules.push_back(read(static_cast<std::uint32_t>(SL_SLOT_FIRST_RULE + i)));
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
            if (e.slot >= SL_SLOT_FIRST_RULE && e.slot - SL_SLOT_FIRST_RULE < impl.rule_count)
                out.rule = e.slot - SL_SLOT_FIRST_RULE;
            out.reason = reason_of(impl.mode, e.slot);
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
                                                       BPF_CGROUP_UDP6_SENDMSG,     BPF_CGROUP_INET_EGRESS};
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

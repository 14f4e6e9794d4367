#include "runtime/egress/policy.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <netdb.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

namespace sandlock::egress {

namespace {


[[noreturn]] void fail_key(std::string_view key, const std::string& reason) {
    throw Error(std::string(key) + ": " + reason);
}

template <typename T>
void sort_unique(std::vector<T>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool has_port(const std::vector<std::uint16_t>& sorted, std::uint16_t port) {
    return std::binary_search(sorted.begin(), sorted.end(), port);
}

// ---- deny and bind entries ----------------------------------------------------------

[[noreturn]] void fail_entry(std::string_view entry, const std::string& reason) {
    throw RuleError(std::string(entry), reason);
}

// The network of a deny entry: IPv4 address/CIDR, or (bracketed) IPv6 address/CIDR.
Cidr parse_deny_network(std::string_view host, bool bracketed, std::string_view entry) {
    const auto slash = host.find('/');
    const auto addr_text = host.substr(0, slash);
    const auto addr = IpAddr::parse(addr_text);
    if (bracketed && (!addr || addr->is_v4())) fail_entry(entry, "invalid IPv6 address " + in_quotes(addr_text));
    if (!addr && slash != std::string_view::npos)
        fail_entry(entry, "invalid network address " + in_quotes(addr_text));
    if (!addr)
        fail_entry(entry, "expected an IP address, a CIDR or \"private\", got " + in_quotes(host) +
                              " (host names cannot be denied)");
    const auto cidr = Cidr::parse(host);
    if (!cidr) fail_entry(entry, "invalid prefix length " + in_quotes(host.substr(slash + 1)));
    return *cidr;
}

std::vector<DenyRule> deny_rules_for(const std::vector<std::optional<Cidr>>& networks, const PortSpec& ports) {
    std::vector<DenyRule> rules;
    for (const auto& net : networks) rules.push_back(DenyRule{net, ports.ports, ports.all_ports});
    return rules;
}

std::vector<std::optional<Cidr>> private_network_list() {
    const auto& nets = private_networks();
    return {nets.begin(), nets.end()};
}

// ---- annotations ----------------------------------------------------------------------

// The entries of a list-valued annotation; blank values and lists without an entry are
// errors naming the key. Entry errors become `<key>: rule "<entry>": <reason>`.
template <typename Parse>
auto parse_list_value(std::string_view key, std::string_view value, Parse parse) {
    if (trim(value).empty()) fail_key(key, "empty value");
    const auto entries = split_list(value);
    if (entries.empty()) fail_key(key, "no entries in " + in_quotes(value));
    std::vector<std::decay_t<decltype(parse(entries.front()))>> out;
    out.reserve(entries.size());
    for (const auto entry : entries) {
        try {
            out.push_back(parse(entry));
        } catch (const RuleError& e) {
            fail_key(key, "rule " + in_quotes(e.rule()) + ": " + e.reason());
        }
    }
    return out;
}

std::string_view enum_value(std::string_view key, std::string_view value) {
    const auto v = trim(value);
    if (v.empty()) fail_key(key, "empty value");
    return v;
}

Loopback parse_loopback(std::string_view value) {
    const auto v = enum_value(kLoopbackKey, value);
    if (v == "allow") return Loopback::Allow;
    if (v == "deny") return Loopback::Deny;
    fail_key(kLoopbackKey, "invalid value " + in_quotes(v) + " (expected allow, deny)");
}

Audit parse_audit(std::string_view value) {
    const auto v = enum_value(kAuditKey, value);
    if (v == "off") return Audit::Off;
    if (v == "deny") return Audit::Deny;
    if (v == "all") return Audit::All;
    fail_key(kAuditKey, "invalid value " + in_quotes(v) + " (expected off, deny, all)");
}

// Sorted, overlapping and adjacent ranges merged: what bind_allowed scans.
std::vector<PortRange> merge_ranges(std::vector<PortRange> ranges) {
    std::sort(ranges.begin(), ranges.end(),
              [](const PortRange& a, const PortRange& b) { return a.first < b.first || (a.first == b.first && a.last < b.last); });
    std::vector<PortRange> merged;
    for (const auto& r : ranges) {
        if (!merged.empty() && r.first <= static_cast<unsigned>(merged.back().last) + 1)
            merged.back().last = std::max(merged.back().last, r.last);
        else
            merged.push_back(r);
    }
    return merged;
}

// ---- resolution -----------------------------------------------------------------------

ProtocolRules& rules_of(ResolvedPolicy& p, Protocol proto) {
    switch (proto) {
        case Protocol::Tcp: return p.tcp;
        case Protocol::Udp: return p.udp;
        case Protocol::Icmp: return p.icmp;
    }
    return p.tcp;
}

// Looks up each name once, so that every rule naming it gets the same addresses.
class NameCache {
public:
    NameCache(Resolver& resolver, std::vector<HostEntry>& hosts) : resolver_(resolver), hosts_(hosts) {}

    const std::vector<IpAddr>& addresses(const std::string& name) {
        for (const auto& h : hosts_)
            if (h.name == name) return h.addresses;
        hosts_.push_back(HostEntry{name, lookup(name)});
        return hosts_.back().addresses;
    }

private:
    std::vector<IpAddr> lookup(const std::string& name) {
        std::vector<IpAddr> found;
        try {
            found = resolver_.lookup(name);
        } catch (const Error& e) {
            fail_key(kAllowKey, "cannot resolve host " + in_quotes(name) + ": " + e.what());
        }
        std::vector<IpAddr> unique;
        for (const auto& ip : found) {
            const auto n = normalize(ip);
            if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
        }
        if (unique.empty()) fail_key(kAllowKey, "cannot resolve host " + in_quotes(name) + ": no addresses");
        return unique;
    }

    Resolver& resolver_;
    std::vector<HostEntry>& hosts_;
};

void add_allow_rules(const Policy& policy, Resolver& resolver, ResolvedPolicy& out) {
    // Each list sized once (a thousand rules would grow it a dozen times over).
    for (const Protocol protocol : {Protocol::Tcp, Protocol::Udp, Protocol::Icmp})
        rules_of(out, protocol).per_ip.reserve(static_cast<std::size_t>(
            std::count_if(policy.allow.begin(), policy.allow.end(), [&](const Rule& r) {
                return r.protocol == protocol && r.address && r.address->is_single();
            })));
    NameCache names(resolver, out.hosts);
    for (const auto& rule : policy.allow) {
        auto& rules = rules_of(out, rule.protocol);
        // ICMP has no ports: an ICMP rule admits its destination whatever the port field.
        const bool all_ports = rule.all_ports || rule.protocol == Protocol::Icmp;
        if (!rule.host) {
            rules.add_any(rule.ports, all_ports);
        } else if (rule.address) {
            rules.add(*rule.address, rule.ports, all_ports);
        } else {
            for (const auto& ip : names.addresses(*rule.host)) rules.add(Cidr::single(ip), rule.ports, all_ports);
        }
    }
}

void add_deny_rules(const Policy& policy, ResolvedPolicy& out) {
    for (const auto& d : policy.deny) {
        for (auto proto : {Protocol::Tcp, Protocol::Udp}) {
            auto& rules = rules_of(out, proto);
            if (d.network) rules.add(*d.network, d.ports, d.all_ports);
            else rules.add_any(d.ports, d.all_ports);
        }
        // ICMP has no ports, so only entries without ports deny it.
        if (!d.all_ports) continue;
        if (d.network) out.icmp.add(*d.network, {}, true);
        else out.icmp.add_any({}, true);
    }
}

// ---- JSON -----------------------------------------------------------------------------

using nlohmann::json;

[[noreturn]] void fail_json(const std::string& what) { throw Error("egress policy: " + what); }

template <typename E, std::size_t N>
E enum_from(const json& j, const char* field, const std::pair<const char*, E> (&names)[N]) {
    const auto s = j.at(field).get<std::string>();
    for (const auto& [name, value] : names)
        if (s == name) return value;
    fail_json("invalid " + std::string(field) + " " + in_quotes(s));
}

std::uint16_t port_from(const json& j) {
    if (!j.is_number_integer()) fail_json("invalid port " + j.dump());
    const auto v = j.get<long long>();
    if (v < 1 || v > 65535) fail_json("invalid port " + j.dump());
    return static_cast<std::uint16_t>(v);
}

std::vector<std::uint16_t> ports_from(const json& j) {
    std::vector<std::uint16_t> ports;
    for (const auto& p : j) ports.push_back(port_from(p));
    return ports;
}

IpAddr address_from(const std::string& s) {
    const auto ip = IpAddr::parse(s);
    if (!ip) fail_json("invalid address " + in_quotes(s));
    return *ip;
}

// One destination as one string, "ADDRESS PORTS" with PORTS "*" or "443,8443": a policy of
// a thousand addresses is a thousand strings, not a thousand objects (create writes it and
// the shim reads it on create's path).
std::string destination_to_string(const std::string& where, bool all_ports, const std::vector<std::uint16_t>& ports) {
    std::string out = where;
    out += ' ';
    if (all_ports) return out + '*';
    for (std::size_t i = 0; i < ports.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(ports[i]);
    }
    return out;
}

struct Destination {
    std::string where;
    bool all_ports = false;
    std::vector<std::uint16_t> ports;
};

Destination destination_from(const json& j) {
    if (j.is_object())  // version 1: {"address"|"network": ..., "all_ports": ..., "ports": [...]}
        return {j.contains("address") ? j.at("address").get<std::string>() : j.at("network").get<std::string>(),
                j.at("all_ports").get<bool>(), ports_from(j.at("ports"))};
    const std::string s = j.get<std::string>();
    const auto space = s.find(' ');
    if (space == std::string::npos) fail_json("invalid destination " + in_quotes(s));
    Destination d{s.substr(0, space), false, {}};
    const std::string_view ports = std::string_view(s).substr(space + 1);
    if (ports == "*") {
        d.all_ports = true;
        return d;
    }
    std::size_t from = 0;
    while (from <= ports.size()) {
        const std::size_t comma = std::min(ports.find(',', from), ports.size());
        const std::string_view p = ports.substr(from, comma - from);
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535)
            fail_json("invalid destination " + in_quotes(s));
        d.ports.push_back(static_cast<std::uint16_t>(value));
        from = comma + 1;
    }
    return d;
}

// compact: destinations as "ADDRESS PORTS" strings (the shim's file); otherwise as objects
// {"address"|"network", "all_ports", "ports"} (what `egress --format json` shows).
json rules_to_json(const ProtocolRules& r, bool compact) {
    json per_ip = json::array();
    for (const auto& e : r.per_ip)
        per_ip.push_back(compact ? json(destination_to_string(e.address.to_string(), e.all_ports, e.ports))
                                 : json{{"address", e.address.to_string()}, {"all_ports", e.all_ports}, {"ports", e.ports}});
    json per_net = json::array();
    for (const auto& e : r.per_net)
        per_net.push_back(compact ? json(destination_to_string(e.network.to_string(), e.all_ports, e.ports))
                                  : json{{"network", e.network.to_string()}, {"all_ports", e.all_ports}, {"ports", e.ports}});
    return {{"any_ip_all_ports", r.any_ip_all_ports},
            {"any_ip_ports", r.any_ip_ports},
            {"per_ip", per_ip},
            {"per_net", per_net}};
}

ProtocolRules rules_from_json(const json& j) {
    ProtocolRules r;
    r.any_ip_all_ports = j.at("any_ip_all_ports").get<bool>();
    r.any_ip_ports = ports_from(j.at("any_ip_ports"));
    r.per_ip.reserve(j.at("per_ip").size());
    for (const auto& e : j.at("per_ip")) {
        Destination d = destination_from(e);
        r.per_ip.push_back({address_from(d.where), d.all_ports, std::move(d.ports)});
    }
    for (const auto& e : j.at("per_net")) {
        Destination d = destination_from(e);
        const auto net = Cidr::parse(d.where);
        if (!net || net->is_single()) fail_json("invalid network " + in_quotes(d.where));
        r.per_net.push_back({*net, d.all_ports, std::move(d.ports)});
    }
    r.finalize();
    return r;
}

constexpr std::pair<const char*, Mode> kModes[] = {{"open", Mode::Open}, {"allow", Mode::Allow}, {"deny", Mode::Deny}};
constexpr std::pair<const char*, Loopback> kLoopbacks[] = {{"allow", Loopback::Allow}, {"deny", Loopback::Deny}};
constexpr std::pair<const char*, Audit> kAudits[] = {{"off", Audit::Off}, {"deny", Audit::Deny}, {"all", Audit::All}};

// 3: serialize() writes destinations as "ADDRESS PORTS" strings and the allow rules as one
// ';'-separated string, to_json() destinations as objects and the rules as a list; all
// are read, and so are 2 (the rules a list) and 1 (objects).
constexpr int kJsonVersion = 3;

}  // namespace

const char* to_string(Mode m) {
    switch (m) {
        case Mode::Open: return "open";
        case Mode::Allow: return "allow";
        case Mode::Deny: return "deny";
    }
    return "?";
}

const char* to_string(Loopback l) { return l == Loopback::Allow ? "allow" : "deny"; }

const char* to_string(Audit a) {
    switch (a) {
        case Audit::Off: return "off";
        case Audit::Deny: return "deny";
        case Audit::All: return "all";
    }
    return "?";
}

const char* to_string(Decision d) { return d == Decision::Allow ? "allow" : "deny"; }

const char* to_string(Reason r) {
    switch (r) {
        case Reason::Loopback: return "loopback";
        case Reason::AllowRule: return "allow-rule";
        case Reason::NoAllowRule: return "no-allow-rule";
        case Reason::DenyRule: return "deny-rule";
        case Reason::NotDenied: return "not-denied";
        case Reason::Open: return "open";
    }
    return "?";
}

const std::vector<Cidr>& private_networks() {
    static const std::vector<Cidr> nets = [] {
        std::vector<Cidr> v;
        // RFC 1918, link-local, CGNAT, ULA; broadcast and multicast (a LAN's other hosts);
        // NAT64's well-known prefix, which a NAT64 gateway turns into any IPv4 address,
        // private ones included.
        for (const char* text : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                                 "100.64.0.0/10", "fc00::/7", "fe80::/10", "255.255.255.255/32", "224.0.0.0/4",
                                 "ff00::/8", "64:ff9b::/96"})
            v.push_back(*Cidr::parse(text));
        return v;
    }();
    return nets;
}

std::vector<DenyRule> parse_deny_entry(std::string_view entry) {
    std::string_view host = entry;
    std::optional<std::string_view> port_part;
    bool bracketed = false;
    if (!entry.empty() && entry.front() == '[') {
        const auto close = entry.find(']');
        if (close == std::string_view::npos) fail_entry(entry, "missing \"]\"");
        host = entry.substr(1, close - 1);
        const auto after = entry.substr(close + 1);
        if (!after.empty() && after.front() != ':')
            fail_entry(entry, "unexpected " + in_quotes(after) + " after \"]\"");
        if (!after.empty()) port_part = after.substr(1);
        bracketed = true;
    } else {
        // Unbracketed IPv6 is ambiguous here, where the port is optional: is `fd00::1:80`
        // fd00::1 port 80, or fd00::1:80 every port? Refuse rather than guess.
        if (std::count(entry.begin(), entry.end(), ':') > 1)
            fail_entry(entry, "IPv6 addresses must be in brackets, as in \"[fd00::1]\" or \"[fd00::1]:80\"");
        if (const auto colon = entry.find(':'); colon != std::string_view::npos) {
            host = entry.substr(0, colon);
            port_part = entry.substr(colon + 1);
        }
    }
    const PortSpec ports = port_part ? parse_ports(*port_part, entry, Dialect::Plain) : PortSpec{{}, true};
    if (!bracketed && host == "private") return deny_rules_for(private_network_list(), ports);
    if (!bracketed && (host.empty() || host == "*")) return deny_rules_for({std::nullopt}, ports);
    return deny_rules_for({parse_deny_network(host, bracketed, entry)}, ports);
}

PortRange parse_port_range(std::string_view entry) {
    const auto port = [&](std::string_view text) {
        const auto t = trim(text);
        const auto p = parse_port_number(t);
        if (!p) fail_entry(entry, "invalid port " + in_quotes(t));
        if (*p == 0) fail_entry(entry, "port 0 is not valid");
        return *p;
    };
    const auto dash = entry.find('-');
    if (dash == std::string_view::npos) {
        const auto p = port(entry);
        return {p, p};
    }
    const PortRange r{port(entry.substr(0, dash)), port(entry.substr(dash + 1))};
    if (r.first > r.last)
        fail_entry(entry, "invalid port range (" + std::to_string(r.first) + " is greater than " +
                              std::to_string(r.last) + ")");
    return r;
}

Policy parse_policy(const std::map<std::string, std::string>& annotations) {
    if (annotations.count(std::string(kAllowKey)) && annotations.count(std::string(kDenyKey)))
        fail_key(kDenyKey, "cannot be combined with " + std::string(kAllowKey));
    Policy p;
    for (const auto& [key, value] : annotations) {
        if (key == kAuditKey) {
            p.audit = parse_audit(value);
            continue;
        }
        if (!key.starts_with(kNetworkPrefix)) continue;
        p.network_keys = true;
        if (key == kAllowKey) {
            p.mode = Mode::Allow;
            p.allow = parse_list_value(kAllowKey, value, parse_rule);
        } else if (key == kDenyKey) {
            p.mode = Mode::Deny;
            for (auto& group : parse_list_value(kDenyKey, value, parse_deny_entry))
                p.deny.insert(p.deny.end(), group.begin(), group.end());
        } else if (key == kAllowBindKey) {
            p.allow_bind = parse_list_value(kAllowBindKey, value, parse_port_range);
        } else if (key == kLoopbackKey) {
            p.loopback = parse_loopback(value);
        } else if (key == kProfileKey) {
            p.profiles = parse_list_value(kProfileKey, value, [](std::string_view name) { return std::string(name); });
        } else if (key == kLearnKey) {
            const auto v = enum_value(kLearnKey, value);
            if (v != "true" && v != "false") fail_key(kLearnKey, "invalid value " + in_quotes(v) + " (expected true, false)");
            p.learn = v == "true";
        } else {
            fail_key(key, "unknown annotation (expected one of " + std::string(kAllowKey) + ", " +
                              std::string(kDenyKey) + ", " + std::string(kAllowBindKey) + ", " +
                              std::string(kLoopbackKey) + ", " + std::string(kProfileKey) + ", " +
                              std::string(kLearnKey) + ")");
        }
    }
    if (p.learn) {
        // Learning watches what the workload does: nothing may be refused, all of it recorded.
        if (p.mode != Mode::Open || !p.profiles.empty())
            fail_key(kLearnKey, "learning mode allows every destination: it cannot be combined with " +
                                    std::string(kAllowKey) + ", " + std::string(kDenyKey) + " or " +
                                    std::string(kProfileKey));
        p.audit = Audit::All;
    }
    return p;
}

std::vector<IpAddr> SystemResolver::lookup(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;  // one entry an address, not one a socket type
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0) throw Error(rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    std::vector<IpAddr> out;
    for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            out.push_back(IpAddr::from(reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr));
        else if (ai->ai_family == AF_INET6)
            out.push_back(IpAddr::from(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr));
    }
    return out;
}

void ProtocolRules::add_any(const std::vector<std::uint16_t>& ports, bool all_ports) {
    if (all_ports) any_ip_all_ports = true;
    else any_ip_ports.insert(any_ip_ports.end(), ports.begin(), ports.end());
}

void ProtocolRules::add(const Cidr& where, const std::vector<std::uint16_t>& ports, bool all_ports) {
    auto kept = all_ports ? std::vector<std::uint16_t>{} : ports;
    if (where.is_single()) per_ip.push_back(AddressPorts{where.base, all_ports, std::move(kept)});
    else per_net.push_back(NetworkPorts{where, all_ports, std::move(kept)});
}

namespace {

// Sorts entries by key and merges those with equal keys (ports united, all_ports OR'd),
// in place: a policy of thousands of entries is not copied.
template <typename Entry, typename Key>
void merge_entries(std::vector<Entry>& entries, Key key) {
    std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) { return key(a) < key(b); });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (kept > 0 && key(entries[kept - 1]) == key(entries[i])) {
            Entry& into = entries[kept - 1];
            into.all_ports = into.all_ports || entries[i].all_ports;
            into.ports.insert(into.ports.end(), entries[i].ports.begin(), entries[i].ports.end());
        } else {
            if (kept != i) entries[kept] = std::move(entries[i]);
            ++kept;
        }
    }
    entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(kept), entries.end());
    for (auto& e : entries) {
        if (e.all_ports) e.ports.clear();
        sort_unique(e.ports);
    }
}

}  // namespace

void ProtocolRules::finalize() {
    sort_unique(any_ip_ports);
    merge_entries(per_ip, [](const AddressPorts& e) { return e.address; });
    merge_entries(per_net, [](const NetworkPorts& e) { return e.network; });
}

bool ProtocolRules::matches(const IpAddr& ip, std::uint16_t port) const {
    if (any_ip_all_ports || has_port(any_ip_ports, port)) return true;
    const auto it = std::lower_bound(per_ip.begin(), per_ip.end(), ip,
                                     [](const AddressPorts& e, const IpAddr& a) { return e.address < a; });
    if (it != per_ip.end() && it->address == ip && (it->all_ports || has_port(it->ports, port))) return true;
    for (const auto& n : per_net)
        if (n.network.contains(ip) && (n.all_ports || has_port(n.ports, port))) return true;
    return false;
}

bool reaches_loopback(const IpAddr& ip) {
    static constexpr std::array<std::uint8_t, 16> kAny{};
    if (ip.is_v4()) return ip.bytes[0] == 127 || ip.bytes == kAny;
    std::array<std::uint8_t, 16> one{};
    one[15] = 1;
    return ip.bytes == kAny || ip.bytes == one;
}

const ProtocolRules& ResolvedPolicy::rules(Protocol p) const {
    switch (p) {
        case Protocol::Tcp: return tcp;
        case Protocol::Udp: return udp;
        case Protocol::Icmp: return icmp;
    }
    return tcp;
}

Verdict ResolvedPolicy::check(Protocol protocol, const IpAddr& ip, std::uint16_t port) const {
    const IpAddr dest = normalize(ip);
    if (reaches_loopback(dest)) {
        if (loopback == Loopback::Allow) return {Decision::Allow, Reason::Loopback};
        if (mode != Mode::Allow) return {Decision::Deny, Reason::Loopback};
    }
    switch (mode) {
        case Mode::Open:
            return {Decision::Allow, Reason::Open};
        case Mode::Allow:
            if (rules(protocol).matches(dest, port)) return {Decision::Allow, Reason::AllowRule};
            return {Decision::Deny, Reason::NoAllowRule};
        case Mode::Deny:
            if (rules(protocol).matches(dest, port)) return {Decision::Deny, Reason::DenyRule};
            return {Decision::Allow, Reason::NotDenied};
    }
    return {Decision::Deny, Reason::NoAllowRule};  // fail closed on a corrupt mode
}

bool ResolvedPolicy::bind_allowed(std::uint16_t port) const {
    if (!bind) return true;
    for (const auto& r : *bind)
        if (r.first <= port && port <= r.last) return true;
    return false;
}

std::optional<std::vector<std::uint16_t>> ResolvedPolicy::landlock_connect_ports() const {
    if (mode != Mode::Allow || loopback == Loopback::Allow || !ceiling) return std::nullopt;
    std::vector<std::uint16_t> ports;
    for (const auto& rule : *ceiling) {
        if (rule.protocol != Protocol::Tcp) continue;
        if (rule.all_ports) return std::nullopt;
        ports.insert(ports.end(), rule.ports.begin(), rule.ports.end());
    }
    sort_unique(ports);
    return ports;
}

// By value: what the result keeps of it (the rules as written, the ceiling) is moved.
ResolvedPolicy resolve(Policy policy, Resolver& resolver, Loopback default_loopback) {
    ResolvedPolicy out;
    out.mode = policy.mode;
    out.loopback = policy.loopback.value_or(default_loopback);
    out.audit = policy.audit;
    out.ceiling = std::move(policy.ceiling);
    out.refresh = policy.refresh;
    out.learn = policy.learn;
    if (policy.allow_bind) out.bind = merge_ranges(*policy.allow_bind);
    if (policy.mode == Mode::Allow) {
        add_allow_rules(policy, resolver, out);
        out.allow_rules = RuleTexts(policy.allow);
    }
    if (policy.mode == Mode::Deny) add_deny_rules(policy, out);
    for (auto* r : {&out.tcp, &out.udp, &out.icmp}) r->finalize();
    return out;
}

namespace {

json rule_texts(const std::vector<Rule>& rules) {
    json out = json::array();
    for (const auto& r : rules) out.push_back(to_string(r));
    return out;
}

// compact: one string, as kept (the shim's file: a thousand rules are one JSON value).
json rule_texts(const RuleTexts& rules, bool compact) {
    if (compact) return rules.joined();
    json out = json::array();
    for (auto& t : rules.texts()) out.push_back(std::move(t));
    return out;
}

std::vector<Rule> rules_from_texts(const json& j) {
    std::vector<Rule> out;
    for (const auto& t : j) {
        try {
            out.push_back(parse_rule(t.get<std::string>()));
        } catch (const RuleError& e) {
            fail_json(std::string("invalid rule: ") + e.what());
        }
    }
    return out;
}

json policy_to_json(const ResolvedPolicy& p, bool compact) {
    json hosts = json::array();
    for (const auto& h : p.hosts) {
        json addrs = json::array();
        for (const auto& a : h.addresses) addrs.push_back(a.to_string());
        hosts.push_back({{"name", h.name}, {"addresses", addrs}});
    }
    json bind = nullptr;
    if (p.bind) {
        bind = json::array();
        for (const auto& r : *p.bind) bind.push_back({r.first, r.last});
    }
    return {{"version", kJsonVersion},
            {"mode", to_string(p.mode)},
            {"loopback", to_string(p.loopback)},
            {"audit", to_string(p.audit)},
            {"tcp", rules_to_json(p.tcp, compact)},
            {"udp", rules_to_json(p.udp, compact)},
            {"icmp", rules_to_json(p.icmp, compact)},
            {"bind", bind},
            {"hosts", hosts},
            {"allow_rules", rule_texts(p.allow_rules, compact)},
            {"ceiling", p.ceiling ? rule_texts(*p.ceiling) : json(nullptr)},
            {"learn", p.learn},
            {"refresh", p.refresh ? json{{"min_interval_ms", p.refresh->min_interval_ms},
                                         {"max_interval_ms", p.refresh->max_interval_ms},
                                         {"grace_ms", p.refresh->grace_ms}}
                                  : json(nullptr)}};
}

}  // namespace

void to_json(json& j, const ResolvedPolicy& p) { j = policy_to_json(p, false); }

namespace {

ResolvedPolicy policy_from_json(const json& j) {
    if (!j.is_object()) fail_json("not a JSON object");
    if (j.at("version") != kJsonVersion && j.at("version") != 2 && j.at("version") != 1)
        fail_json("unsupported version " + j.at("version").dump());
    ResolvedPolicy out;
    out.mode = enum_from(j, "mode", kModes);
    out.loopback = enum_from(j, "loopback", kLoopbacks);
    out.audit = enum_from(j, "audit", kAudits);
    out.tcp = rules_from_json(j.at("tcp"));
    out.udp = rules_from_json(j.at("udp"));
    out.icmp = rules_from_json(j.at("icmp"));
    if (!j.at("bind").is_null()) {
        std::vector<PortRange> ranges;
        for (const auto& r : j.at("bind")) {
            if (!r.is_array() || r.size() != 2) fail_json("invalid bind range " + r.dump());
            const PortRange range{port_from(r[0]), port_from(r[1])};
            if (range.first > range.last) fail_json("invalid bind range " + r.dump());
            ranges.push_back(range);
        }
        out.bind = merge_ranges(std::move(ranges));
    }
    for (const auto& h : j.at("hosts")) {
        HostEntry entry{h.at("name").get<std::string>(), {}};
        for (const auto& a : h.at("addresses")) entry.addresses.push_back(normalize(address_from(a.get<std::string>())));
        out.hosts.push_back(std::move(entry));
    }
    // Written since live changes: a policy from an older runtime has neither.
    if (const auto r = j.find("allow_rules"); r != j.end())
        out.allow_rules = r->is_string() ? RuleTexts::from_joined(r->get<std::string>()) : RuleTexts(rules_from_texts(*r));
    if (const auto c = j.find("ceiling"); c != j.end() && !c->is_null()) out.ceiling = rules_from_texts(*c);
    out.learn = j.value("learn", false);
    if (const auto r = j.find("refresh"); r != j.end() && !r->is_null())
        out.refresh = RefreshSettings{r->at("min_interval_ms").get<std::uint64_t>(), r->at("max_interval_ms").get<std::uint64_t>(),
                                      r->at("grace_ms").get<std::uint64_t>()};
    return out;
}

}  // namespace

// nlohmann's own exceptions (missing field, wrong type) become sandlock::Error too, so
// that j.get<ResolvedPolicy>() and deserialize_policy fail the same way.
void from_json(const json& j, ResolvedPolicy& p) {
    try {
        p = policy_from_json(j);
    } catch (const json::exception& e) {
        fail_json(e.what());
    }
}

std::string serialize(const ResolvedPolicy& p) { return policy_to_json(p, true).dump(); }

ResolvedPolicy deserialize_policy(std::string_view text) {
    try {
        return json::parse(text).get<ResolvedPolicy>();
    } catch (const json::exception& e) {
        fail_json(e.what());
    }
}

}  // namespace sandlock::egress

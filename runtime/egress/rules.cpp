#include "runtime/egress/rules.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sandlock::egress {

std::string_view trim(std::string_view s) {
    constexpr std::string_view kSpace = " \t\r\n\v\f";
    const auto first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(kSpace);
    return s.substr(first, last - first + 1);
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

namespace {

// sandlock's quoting (backticks) in its own texts; ours is in_quotes().
std::string ticked(std::string_view s) { return "`" + std::string(s) + "`"; }

// Throws a RuleError whose what() is sandlock's text (NetAllow) or ours (Plain).
[[noreturn]] void fail(Dialect dialect, std::string_view rule, const std::string& reason,
                       const std::string& sandlock_text) {
    if (dialect == Dialect::NetAllow)
        throw RuleError(std::string(rule), reason, "--net-allow: " + sandlock_text);
    throw RuleError(std::string(rule), reason);
}

[[noreturn]] void fail_expected_host_port(std::string_view rule) {
    fail(Dialect::NetAllow, rule, "expected \"host:port\" or \":port\"",
         "expected `host:port` or `:port`, got " + ticked(rule));
}

[[noreturn]] void fail_icmp_port(std::string_view rule) {
    fail(Dialect::NetAllow, rule, "icmp rules take no port",
         "icmp rules take no port, got " + ticked(rule));
}

[[noreturn]] void fail_missing_bracket(std::string_view rule) {
    fail(Dialect::NetAllow, rule, "missing \"]\"", "missing `]` in " + ticked(rule));
}

[[noreturn]] void fail_after_bracket(std::string_view after, std::string_view rule) {
    fail(Dialect::NetAllow, rule, "unexpected " + in_quotes(after) + " after \"]\"",
         "unexpected " + ticked(after) + " after `]` in " + ticked(rule));
}

[[noreturn]] void fail_invalid_ipv6(std::string_view addr, std::string_view rule) {
    fail(Dialect::NetAllow, rule, "invalid IPv6 address " + in_quotes(addr),
         "invalid IPv6 address " + ticked(addr) + " in " + ticked(rule));
}

[[noreturn]] void fail_invalid_network(std::string_view addr, std::string_view rule) {
    fail(Dialect::NetAllow, rule, "invalid network address " + in_quotes(addr),
         "invalid network address " + ticked(addr) + " in " + ticked(rule));
}

[[noreturn]] void fail_invalid_prefix(std::string_view len, std::string_view rule) {
    fail(Dialect::NetAllow, rule, "invalid prefix length " + in_quotes(len),
         "invalid prefix length " + ticked(len) + " in " + ticked(rule));
}

std::optional<std::uint8_t> parse_prefix_length(std::string_view text, unsigned max_bits) {
    if (text.empty() || text.size() > 3) return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max_bits) return std::nullopt;
    return static_cast<std::uint8_t>(value);
}

// "addr/len" from a rule; an IPv6-only block when it was written in brackets.
Cidr parse_rule_cidr(std::string_view text, bool bracketed, std::string_view rule) {
    const auto slash = text.find('/');
    const auto addr_text = text.substr(0, slash);
    const auto addr = IpAddr::parse(addr_text);
    if (bracketed && (!addr || addr->is_v4())) fail_invalid_ipv6(addr_text, rule);
    if (!addr) fail_invalid_network(addr_text, rule);
    const auto len_text = text.substr(slash + 1);
    const auto len = parse_prefix_length(len_text, addr->bits());
    if (!len) fail_invalid_prefix(len_text, rule);
    return Cidr::of(*addr, *len);
}

// The text between '[' and ']': an IPv6 address or an IPv6 CIDR.
Cidr parse_bracketed_host(std::string_view inside, std::string_view rule) {
    if (inside.find('/') != std::string_view::npos) return parse_rule_cidr(inside, true, rule);
    const auto addr = IpAddr::parse(inside);
    if (!addr || addr->is_v4()) fail_invalid_ipv6(inside, rule);
    return Cidr::single(*addr);
}

// An unbracketed, non-wildcard host: a CIDR, an IP literal, or else a name for DNS.
// A host with ':' can only be an IPv6 literal (sandlock reads `::1:80` as [::1]:80 too).
std::optional<Cidr> classify_host(std::string_view host, std::string_view rule) {
    if (host.find('/') != std::string_view::npos) return parse_rule_cidr(host, false, rule);
    if (host.find(':') != std::string_view::npos) {
        const auto addr = IpAddr::parse(host);
        if (!addr || addr->is_v4()) fail_invalid_ipv6(host, rule);
        return Cidr::single(*addr);
    }
    if (const auto addr = IpAddr::parse(host)) return Cidr::single(*addr);
    return std::nullopt;
}

// The host of a rule; `Rule::host` keeps it as written (brackets removed).
struct Host {
    std::optional<std::string> name;
    std::optional<Cidr> address;
};

// `[inside]` at the start of text: returns inside and what follows ']'.
std::pair<std::string_view, std::string_view> split_bracketed(std::string_view text, std::string_view rule) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) fail_missing_bracket(rule);
    return {text.substr(1, close - 1), text.substr(close + 1)};
}

Host bracketed_host(std::string_view inside, std::string_view rule) {
    return Host{std::string(inside), parse_bracketed_host(inside, rule)};
}

Rule parse_icmp(std::string_view body, std::string_view rule) {
    Rule r;
    r.protocol = Protocol::Icmp;
    if (!body.empty() && body.front() == '[') {
        const auto [inside, after] = split_bracketed(body, rule);
        if (!after.empty()) {
            if (after.front() == ':') fail_icmp_port(rule);
            fail_after_bracket(after, rule);
        }
        auto host = bracketed_host(inside, rule);
        r.host = std::move(host.name);
        r.address = host.address;
        return r;
    }
    if (body.find(':') != std::string_view::npos) fail_icmp_port(rule);
    if (body.empty())
        fail(Dialect::NetAllow, rule, "icmp rule needs a host or \"*\"",
             "icmp rule needs a host or `*`, got " + ticked(rule));
    if (body == "*") return r;
    r.address = classify_host(body, rule);
    r.host = std::string(body);
    return r;
}

}  // namespace

const char* to_string(Protocol p) {
    switch (p) {
        case Protocol::Tcp: return "tcp";
        case Protocol::Udp: return "udp";
        case Protocol::Icmp: return "icmp";
    }
    return "?";
}

std::optional<Protocol> protocol_from_string(std::string_view s) {
    if (s == "tcp") return Protocol::Tcp;
    if (s == "udp") return Protocol::Udp;
    if (s == "icmp") return Protocol::Icmp;
    return std::nullopt;
}

IpAddr IpAddr::v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddr ip;
    ip.bytes[0] = a;
    ip.bytes[1] = b;
    ip.bytes[2] = c;
    ip.bytes[3] = d;
    return ip;
}

IpAddr IpAddr::from(const in_addr& a) {
    IpAddr ip;
    std::memcpy(ip.bytes.data(), &a, 4);
    return ip;
}

IpAddr IpAddr::from(const in6_addr& a) {
    IpAddr ip;
    ip.family = Family::V6;
    std::memcpy(ip.bytes.data(), &a, 16);
    return ip;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    const std::string s(text);  // inet_pton wants a C string
    if (s.find(':') != std::string::npos) {
        in6_addr a6{};
        if (inet_pton(AF_INET6, s.c_str(), &a6) != 1) return std::nullopt;
        return from(a6);
    }
    in_addr a4{};
    if (inet_pton(AF_INET, s.c_str(), &a4) != 1) return std::nullopt;
    return from(a4);
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

IpAddr normalize(const IpAddr& ip) {
    static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip.is_v4() || std::memcmp(ip.bytes.data(), kMappedPrefix, 12) != 0) return ip;
    return IpAddr::v4(ip.bytes[12], ip.bytes[13], ip.bytes[14], ip.bytes[15]);
}

Cidr Cidr::of(const IpAddr& ip, std::uint8_t prefix) {
    Cidr c;
    c.base = ip;
    c.prefix = static_cast<std::uint8_t>(prefix > ip.bits() ? ip.bits() : prefix);
    const unsigned full = c.prefix / 8;
    const unsigned rest = c.prefix % 8;
    const unsigned len = ip.bits() / 8;
    for (unsigned i = full; i < len; ++i) {
        const bool partial = (i == full && rest != 0);
        c.base.bytes[i] = partial ? static_cast<std::uint8_t>(c.base.bytes[i] & (0xff << (8 - rest))) : 0;
    }
    return c;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const auto slash = text.find('/');
    const auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    if (slash == std::string_view::npos) return single(*addr);
    const auto len = parse_prefix_length(text.substr(slash + 1), addr->bits());
    if (!len) return std::nullopt;
    return of(*addr, *len);
}

bool Cidr::contains(const IpAddr& ip) const {
    if (ip.family != base.family) return false;
    const unsigned full = prefix / 8;
    if (std::memcmp(ip.bytes.data(), base.bytes.data(), full) != 0) return false;
    const unsigned rest = prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (ip.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::to_string() const {
    if (is_single()) return base.to_string();
    return base.to_string() + "/" + std::to_string(prefix);
}

RuleError::RuleError(std::string rule, std::string reason)
    : Error("rule " + in_quotes(rule) + ": " + reason), rule_(std::move(rule)), reason_(std::move(reason)) {}

std::optional<std::uint16_t> parse_port_number(std::string_view text) {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    if (text.empty()) return std::nullopt;
    std::uint32_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
        if (value > 65535) return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

PortSpec parse_ports(std::string_view part, std::string_view rule, Dialect dialect) {
    PortSpec spec;
    bool saw_wildcard = false;
    std::size_t start = 0;
    while (true) {
        const auto comma = part.find(',', start);
        const auto token = trim(part.substr(start, comma == std::string_view::npos ? part.npos : comma - start));
        if (token == "*") {
            saw_wildcard = true;
        } else {
            const auto port = parse_port_number(token);
            if (!port)
                fail(dialect, rule, "invalid port " + in_quotes(token),
                     "invalid port " + ticked(token) + " in " + ticked(rule));
            if (*port == 0)
                fail(dialect, rule, "port 0 is not valid", "port 0 is not valid in " + ticked(rule));
            spec.ports.push_back(*port);
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (saw_wildcard && !spec.ports.empty())
        fail(dialect, rule, "cannot mix \"*\" with concrete ports",
             "cannot mix `*` with concrete ports in " + ticked(rule));
    // Unreachable (an empty token is an invalid port) but kept, as sandlock keeps it.
    if (!saw_wildcard && spec.ports.empty())
        fail(dialect, rule, "at least one port required", "at least one port required in " + ticked(rule));
    spec.all_ports = saw_wildcard;
    return spec;
}

Rule parse_rule(std::string_view text) {
    Protocol protocol = Protocol::Tcp;
    std::string_view rest = text;
    if (const auto sep = text.find("://"); sep != std::string_view::npos) {
        const auto scheme = text.substr(0, sep);
        const auto known = protocol_from_string(scheme);
        if (!known)
            fail(Dialect::NetAllow, text,
                 "unknown scheme " + in_quotes(std::string(scheme) + "://") + " (expected tcp, udp, icmp)",
                 "unknown scheme " + ticked(std::string(scheme) + "://") + " in " + ticked(text) +
                     " (expected tcp, udp, icmp)");
        protocol = *known;
        rest = text.substr(sep + 3);
    }
    if (protocol == Protocol::Icmp) return parse_icmp(rest, text);

    // Ports are checked before the host so that every rule sandlock refuses is refused
    // with sandlock's text; only then come the host checks sandlock does not have.
    if (!rest.empty() && rest.front() == '[') {
        const auto [inside, after] = split_bracketed(rest, text);
        if (after.empty()) fail_expected_host_port(text);
        if (after.front() != ':') fail_after_bracket(after, text);
        const auto ports = parse_ports(after.substr(1), text, Dialect::NetAllow);
        auto bracketed = bracketed_host(inside, text);
        return Rule{protocol, std::move(bracketed.name), bracketed.address, ports.ports, ports.all_ports};
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) fail_expected_host_port(text);
    const auto host_part = rest.substr(0, colon);
    const auto ports = parse_ports(rest.substr(colon + 1), text, Dialect::NetAllow);
    Host host;  // "" and "*": any IP
    if (host_part != "" && host_part != "*") host = Host{std::string(host_part), classify_host(host_part, text)};
    return Rule{protocol, std::move(host.name), host.address, ports.ports, ports.all_ports};
}

std::string to_string(const Rule& rule) {
    std::string out;
    if (rule.protocol != Protocol::Tcp) out = std::string(to_string(rule.protocol)) + "://";
    const std::string host = rule.host.value_or("*");
    const bool bracket = host.find(':') != std::string::npos;  // IPv6, written in brackets
    out += bracket ? "[" + host + "]" : host;
    if (rule.protocol == Protocol::Icmp) return out;
    out += ':';
    if (rule.all_ports) return out + "*";
    for (std::size_t i = 0; i < rule.ports.size(); ++i) out += (i ? "," : "") + std::to_string(rule.ports[i]);
    return out;
}

bool same_rule(const Rule& a, const Rule& b) {
    auto lower = [](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    auto port_set = [](std::vector<std::uint16_t> p) {
        std::sort(p.begin(), p.end());
        p.erase(std::unique(p.begin(), p.end()), p.end());
        return p;
    };
    return a.protocol == b.protocol && a.host.has_value() == b.host.has_value() &&
           (!a.host || lower(*a.host) == lower(*b.host)) && a.all_ports == b.all_ports &&
           port_set(a.ports) == port_set(b.ports);
}

namespace {

bool host_inside(const Rule& rule, const Rule& ceiling) {
    if (!ceiling.host) return true;  // any IP
    if (!rule.host) return false;
    if (ceiling.address) {
        if (!rule.address || rule.address->base.family != ceiling.address->base.family) return false;
        return rule.address->prefix >= ceiling.address->prefix && ceiling.address->contains(rule.address->base);
    }
    if (rule.address) return false;
    const auto lower = [](std::string s) {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    return lower(*rule.host) == lower(*ceiling.host);
}

bool port_inside(std::uint16_t port, const Rule& ceiling) {
    return ceiling.all_ports || std::find(ceiling.ports.begin(), ceiling.ports.end(), port) != ceiling.ports.end();
}

}  // namespace

bool inside_ceiling(const Rule& rule, const std::vector<Rule>& ceiling) {
    const auto holds_host = [&](const Rule& c) { return c.protocol == rule.protocol && host_inside(rule, c); };
    if (rule.protocol == Protocol::Icmp) return std::any_of(ceiling.begin(), ceiling.end(), holds_host);
    if (rule.all_ports)
        return std::any_of(ceiling.begin(), ceiling.end(), [&](const Rule& c) { return holds_host(c) && c.all_ports; });
    return std::all_of(rule.ports.begin(), rule.ports.end(), [&](std::uint16_t port) {
        return std::any_of(ceiling.begin(), ceiling.end(), [&](const Rule& c) { return holds_host(c) && port_inside(port, c); });
    });
}

std::vector<std::string_view> split_list(std::string_view value) {
    std::vector<std::string_view> entries;
    std::size_t start = 0;
    while (start <= value.size()) {
        auto end = value.find(';', start);
        if (end == std::string_view::npos) end = value.size();
        const auto entry = trim(value.substr(start, end - start));
        if (!entry.empty()) entries.push_back(entry);
        start = end + 1;
    }
    return entries;
}

std::vector<Rule> parse_rule_list(std::string_view value) {
    std::vector<Rule> rules;
    for (const auto entry : split_list(value)) rules.push_back(parse_rule(entry));
    if (rules.empty()) throw Error("empty rule list");
    return rules;
}

RuleTexts::RuleTexts(const std::vector<Rule>& rules) : count_(rules.size()) {
    for (const auto& r : rules) {
        if (!joined_.empty()) joined_ += ';';
        joined_ += to_string(r);
    }
}

RuleTexts RuleTexts::from_joined(std::string joined) {
    RuleTexts out;
    // as joined() writes it: no empty entry (split_list would cost a vector here)
    out.count_ = joined.empty() ? 0 : static_cast<std::size_t>(std::count(joined.begin(), joined.end(), ';')) + 1;
    out.joined_ = std::move(joined);
    return out;
}

std::vector<Rule> RuleTexts::rules() const {
    std::vector<Rule> out;
    out.reserve(count_);
    for (const auto entry : split_list(joined_)) out.push_back(parse_rule(entry));
    return out;
}

std::vector<std::string> RuleTexts::texts() const {
    std::vector<std::string> out;
    for (const auto entry : split_list(joined_)) out.emplace_back(entry);
    return out;
}

}  // namespace sandlock::egress

// The egress rule grammar of io.sandlock.network.allow (see shared/design/ANNOTATIONS.md).
//
// It is sandlock-core 0.8.0's `NetAllow::parse` grammar, with the same semantics and the
// same error texts, plus three extensions: bracketed IPv6 hosts (`[::1]:80`), CIDR hosts
// (`10.0.0.0/8:5432`, `[fd00::/8]:*`) and IP literals, which are matched without DNS.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>

#include "runtime/util/error.hpp"

namespace sandlock::egress {

// The L4 protocol a rule applies to. Icmp is the unprivileged ping socket
// (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6); raw ICMP is never allowed.
enum class Protocol : std::uint8_t { Tcp, Udp, Icmp };

const char* to_string(Protocol p);
std::optional<Protocol> protocol_from_string(std::string_view s);

// An IPv4 or IPv6 address. IPv4 uses bytes[0..3]; the other bytes stay zero so that
// the comparisons are value comparisons.
struct IpAddr {
    enum class Family : std::uint8_t { V4, V6 };

    Family family = Family::V4;
    std::array<std::uint8_t, 16> bytes{};

    static IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d);
    static IpAddr from(const in_addr& a);
    static IpAddr from(const in6_addr& a);
    // Strict literal (inet_pton): dotted quad or RFC 4291 text, no brackets, no zone.
    static std::optional<IpAddr> parse(std::string_view text);

    bool is_v4() const { return family == Family::V4; }
    unsigned bits() const { return is_v4() ? 32 : 128; }
    std::string to_string() const;

    // Family, then the bytes as one big-endian number: the order the defaulted comparison
    // gives, without a memcmp call per comparison (sorting a thousand-rule policy's
    // addresses spent a tenth of its time there).
    std::strong_ordering operator<=>(const IpAddr& o) const {
        if (family != o.family) return family <=> o.family;
        if (const auto c = half(0) <=> o.half(0); c != 0) return c;
        return half(1) <=> o.half(1);
    }
    bool operator==(const IpAddr&) const = default;
    // bytes[8i..8i+7] as a big-endian number
    std::uint64_t half(int i) const {
        std::uint64_t v;
        __builtin_memcpy(&v, bytes.data() + 8 * i, sizeof v);
        return __builtin_bswap64(v);
    }
};

// ::ffff:a.b.c.d becomes a.b.c.d (the contract judges mapped destinations as IPv4);
// every other address is returned unchanged.
IpAddr normalize(const IpAddr& ip);

// An address block. Host bits are always cleared (`10.0.0.1/8` is 10.0.0.0/8).
struct Cidr {
    IpAddr base;
    std::uint8_t prefix = 0;

    static Cidr single(const IpAddr& ip) { return Cidr::of(ip, static_cast<std::uint8_t>(ip.bits())); }
    static Cidr of(const IpAddr& ip, std::uint8_t prefix);
    // "addr" or "addr/len", either family; nullopt when malformed.
    static std::optional<Cidr> parse(std::string_view text);

    bool is_single() const { return prefix == base.bits(); }
    bool contains(const IpAddr& ip) const;
    std::string to_string() const;  // "10.0.0.0/8"; a single address without "/len"

    auto operator<=>(const Cidr&) const = default;
};

// One allow rule. Rules are OR'd: traffic passes if any rule matches the protocol,
// the destination IP and the destination port.
struct Rule {
    Protocol protocol = Protocol::Tcp;
    // nullopt: any IP (host "" or "*"). Otherwise the host as written, without brackets.
    std::optional<std::string> host;
    // Set when host is an IP literal or a CIDR: such hosts are matched without DNS.
    std::optional<Cidr> address;
    // Ports in rule order; empty when all_ports, and always empty for Icmp.
    std::vector<std::uint16_t> ports;
    bool all_ports = false;

    bool operator==(const Rule&) const = default;
};

// A malformed rule. what() is sandlock's own text for the case (e.g.
// "--net-allow: port 0 is not valid in `a:0`"); rule() and reason() let a caller
// name the annotation instead: `io.sandlock.network.allow: rule "a:0": port 0 is not valid`.
class RuleError : public Error {
public:
    RuleError(std::string rule, std::string reason, const std::string& message)
        : Error(message), rule_(std::move(rule)), reason_(std::move(reason)) {}
    // For grammars sandlock does not have: what() is `rule "<rule>": <reason>`.
    RuleError(std::string rule, std::string reason);

    const std::string& rule() const { return rule_; }
    const std::string& reason() const { return reason_; }

private:
    std::string rule_;
    std::string reason_;
};

// Parses one rule (no surrounding whitespace expected). Throws RuleError.
Rule parse_rule(std::string_view text);

// The rule as the grammar writes it, scheme first only for udp and icmp
// (`10.0.0.1:443`, `udp://[fd00::1]:53`, `icmp://*`, `:80,443`); parse_rule reads it back
// to an equal Rule.
std::string to_string(const Rule& rule);
// Whether two rules admit the same destinations as written: the same protocol, host text
// (names compared without case) and port set, whatever the order the ports were listed in.
bool same_rule(const Rule& a, const Rule& b);
// Whether `rule` admits nothing beyond `ceiling` (the operator's limit, at create and for
// every live change): for each of its ports, a ceiling rule of the same protocol whose
// host holds the rule's (any IP; the same name, without case; a CIDR holding the address
// or CIDR — a name never falls inside an address rule, it resolves to whatever its DNS
// says) and that allows the port. ICMP needs the host only.
bool inside_ceiling(const Rule& rule, const std::vector<Rule>& ceiling);

// Splits a ';'-separated annotation value: entries are trimmed of ASCII whitespace
// (annotations are often written as YAML block scalars, one rule a line) and empty
// entries are skipped, so a trailing ';' is harmless. Returns no entry for "", " ; ".
std::vector<std::string_view> split_list(std::string_view value);

// split_list + parse_rule. A list without any rule throws Error("empty rule list").
std::vector<Rule> parse_rule_list(std::string_view value);

// Rules kept as written: their texts (to_string) joined by ';', as in the annotation. A
// resolved policy keeps its allow rules for live changes, which parse them again; neither
// create nor the shim needs them parsed otherwise, and one string holds a thousand rules
// in a few pages where a thousand Rules take dozens (each a page fault to fill).
class RuleTexts {
public:
    RuleTexts() = default;
    explicit RuleTexts(const std::vector<Rule>& rules);
    // A list written by joined() (an egress.json the runtime wrote), not parsed here:
    // rules() throws RuleError should an entry not parse.
    static RuleTexts from_joined(std::string joined);

    std::vector<Rule> rules() const;
    std::vector<std::string> texts() const;
    const std::string& joined() const { return joined_; }
    std::size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    void clear() { *this = RuleTexts(); }

    bool operator==(const RuleTexts&) const = default;

private:
    std::string joined_;
    std::size_t count_ = 0;
};

// How errors of the shared pieces below read: NetAllow gives sandlock's "--net-allow: ..."
// texts as what(); Plain gives `rule "<rule>": <reason>` (for lists sandlock lacks).
enum class Dialect : std::uint8_t { NetAllow, Plain };

// The part after "host:": "*" (every port) or "port{,port}", each port trimmed, 1..65535.
struct PortSpec {
    std::vector<std::uint16_t> ports;
    bool all_ports = false;
};
PortSpec parse_ports(std::string_view part, std::string_view rule, Dialect dialect);

// A port as Rust's u16::from_str reads it (optional '+', decimal digits, <= 65535);
// 0 is returned as 0 (the caller decides). nullopt when malformed.
std::optional<std::uint16_t> parse_port_number(std::string_view text);

// Text helpers shared by the grammar and the policy: ASCII-whitespace trim,
// and our double-quoting of values in error reasons.
std::string_view trim(std::string_view s);
std::string in_quotes(std::string_view s);

}  // namespace sandlock::egress

// The egress policy: annotations -> Policy -> (DNS, once, at create) ResolvedPolicy,
// which the shim consults for every connect/sendto/sendmsg/sendmmsg.
// The contract is shared/design/ANNOTATIONS.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/egress/rules.hpp"

namespace sandlock::egress {

inline constexpr std::string_view kNetworkPrefix = "io.sandlock.network.";
inline constexpr std::string_view kAllowKey = "io.sandlock.network.allow";
inline constexpr std::string_view kDenyKey = "io.sandlock.network.deny";
inline constexpr std::string_view kAllowBindKey = "io.sandlock.network.allow_bind";
inline constexpr std::string_view kLoopbackKey = "io.sandlock.network.loopback";
// Names of the operator's rule sets (sandlock-runc-config(5)), ';'-separated.
inline constexpr std::string_view kProfileKey = "io.sandlock.network.profile";
inline constexpr std::string_view kAuditKey = "io.sandlock.audit";
// "true": learning mode (egress/learn.hpp): every destination allowed, every decision
// recorded, and `egress ID --suggest` prints the allow list that would have sufficed.
inline constexpr std::string_view kLearnKey = "io.sandlock.network.learn";

// Open: no allow/deny list (only allow_bind or loopback was given): egress is not
// filtered by destination. Allow: default deny. Deny: default allow.
enum class Mode : std::uint8_t { Open, Allow, Deny };
enum class Loopback : std::uint8_t { Allow, Deny };
enum class Audit : std::uint8_t { Off, Deny, All };

const char* to_string(Mode m);
const char* to_string(Loopback l);
const char* to_string(Audit a);

// One entry of io.sandlock.network.deny. `private` expands to one DenyRule a block.
struct DenyRule {
    std::optional<Cidr> network;  // nullopt: any IP (the `:port` form)
    std::vector<std::uint16_t> ports;
    bool all_ports = false;  // no port given: every port, and ICMP too

    bool operator==(const DenyRule&) const = default;
};

// An inclusive port range of io.sandlock.network.allow_bind (`8000-8100`, or `22`).
struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;

    bool operator==(const PortRange&) const = default;
};

// What `private` denies: the RFC 1918 blocks, link-local (169.254/16, which holds the
// cloud metadata endpoints), RFC 6598 shared space 100.64/10 (carrier NAT, but also
// Tailscale and some clouds' internal pod networks: not the public internet, so a
// "no internal destinations" list must cover it), IPv6 ULA fc00::/7 and link-local
// fe80::/10. Loopback is not in it: io.sandlock.network.loopback decides that.
const std::vector<Cidr>& private_networks();

// Entry grammar, below the annotation level (both throw RuleError, what() = `rule "x": ...`).
//   deny entry: "private" | host | host ":" ports | ":" ports, where host is an IPv4
//     address or CIDR, "*" (any IP), or an IPv6 address or CIDR in brackets (`[fd00::/8]`);
//     host names are refused (a deny by name would miss the name's other addresses).
//   bind entry: port | port "-" port (1..65535, first <= last).
std::vector<DenyRule> parse_deny_entry(std::string_view entry);
PortRange parse_port_range(std::string_view entry);

// `resolve: {refresh: true, ...}` of the operator's configuration, kept with the policy:
// the shim re-resolves every allowed name when its DNS TTL expires (never sooner than
// min_interval, never later than max_interval) and keeps an address that left the answer
// for `grace` more (connections being made to it as the name moves still work).
struct RefreshSettings {
    std::uint64_t min_interval_ms = 30'000;
    std::uint64_t max_interval_ms = 3'600'000;
    std::uint64_t grace_ms = 300'000;
    bool operator==(const RefreshSettings&) const = default;
};

struct Policy {
    Mode mode = Mode::Open;
    std::vector<Rule> allow;     // Mode::Allow
    std::vector<DenyRule> deny;  // Mode::Deny
    std::optional<std::vector<PortRange>> allow_bind;  // nullopt: bind is not restricted
    std::optional<Loopback> loopback;                  // nullopt: the runtime's default
    Audit audit = Audit::Off;
    std::vector<std::string> profiles;  // io.sandlock.network.profile, resolved by the config
    std::optional<std::vector<Rule>> ceiling;  // the operator's, set by the config
    std::optional<RefreshSettings> refresh;    // the operator's, set by the config
    bool learn = false;                        // io.sandlock.network.learn: open mode, audit all
    bool network_keys = false;  // some io.sandlock.network.* key was present

    // False when no io.sandlock.network.* key is present: the runtime then acts as a
    // plain OCI runtime and starts no shim (io.sandlock.audit alone does not count).
    bool active() const { return network_keys; }
};

// Reads the io.sandlock.network.* keys and io.sandlock.audit; other keys are ignored.
// Throws sandlock::Error naming the key, e.g.
//   io.sandlock.network.allow: rule "foo:0": port 0 is not valid
Policy parse_policy(const std::map<std::string, std::string>& annotations);

// Host name lookup, an interface so that tests need no DNS.
class Resolver {
public:
    virtual ~Resolver() = default;
    // Every address of host, both families. Throws sandlock::Error whose message is
    // the reason only (e.g. gai_strerror's text).
    virtual std::vector<IpAddr> lookup(const std::string& host) = 0;
};

// getaddrinfo, AF_UNSPEC.
class SystemResolver final : public Resolver {
public:
    std::vector<IpAddr> lookup(const std::string& host) override;
};

// One protocol's destinations, ready for matching: sorted, deduplicated, no allocation
// needed to match. In allow mode these are the allowed destinations, in deny mode the
// denied ones. Mirrors sandlock's ResolvedNetAllow (per_ip_all_ports is the flag here).
struct AddressPorts {
    IpAddr address;
    bool all_ports = false;
    std::vector<std::uint16_t> ports;  // sorted, unique; empty when all_ports
    bool operator==(const AddressPorts&) const = default;
};

struct NetworkPorts {
    Cidr network;  // never a single address (those are in per_ip)
    bool all_ports = false;
    std::vector<std::uint16_t> ports;
    bool operator==(const NetworkPorts&) const = default;
};

struct ProtocolRules {
    bool any_ip_all_ports = false;            // `:*`, `*:*`, `icmp://*`
    std::vector<std::uint16_t> any_ip_ports;  // `:port`; sorted, unique
    std::vector<AddressPorts> per_ip;         // sorted by address, one entry an address
    std::vector<NetworkPorts> per_net;        // CIDR rules, sorted, one entry a block

    void add_any(const std::vector<std::uint16_t>& ports, bool all_ports);
    void add(const Cidr& where, const std::vector<std::uint16_t>& ports, bool all_ports);
    // Re-establishes the invariants above after add()s (or after deserialisation).
    void finalize();

    // ip must already be normalize()d.
    bool matches(const IpAddr& ip, std::uint16_t port) const;
    bool empty() const { return !any_ip_all_ports && any_ip_ports.empty() && per_ip.empty() && per_net.empty(); }

    bool operator==(const ProtocolRules&) const = default;
};

// A resolved name, for the container's /etc/hosts.
struct HostEntry {
    std::string name;
    std::vector<IpAddr> addresses;  // resolver order, normalized, unique
    bool operator==(const HostEntry&) const = default;
};

enum class Decision : std::uint8_t { Allow, Deny };
// Why: for the audit log.
enum class Reason : std::uint8_t {
    Loopback,     // loopback bypass (allowed) or loopback=deny outside allow mode (denied)
    AllowRule,    // allow mode, a rule matched
    NoAllowRule,  // allow mode, nothing matched
    DenyRule,     // deny mode, an entry matched
    NotDenied,    // deny mode, nothing matched
    Open,         // no allow/deny list
};
const char* to_string(Decision d);
const char* to_string(Reason r);

struct Verdict {
    Decision decision;
    Reason reason;
    bool allowed() const { return decision == Decision::Allow; }
    bool operator==(const Verdict&) const = default;
};

// True for destinations that reach the host itself: 127.0.0.0/8, ::1, and the
// unspecified 0.0.0.0 and :: (Linux connects those to the local host, so they must not
// slip past loopback=deny). ip must be normalize()d.
bool reaches_loopback(const IpAddr& ip);

struct ResolvedPolicy {
    Mode mode = Mode::Open;
    Loopback loopback = Loopback::Allow;
    Audit audit = Audit::Off;
    ProtocolRules tcp, udp, icmp;  // Allow: allowed destinations; Deny: denied ones
    std::optional<std::vector<PortRange>> bind;  // sorted, merged; nullopt: unrestricted
    std::vector<HostEntry> hosts;                // names of the allow rules, rule order
    // What the policy was made of and may become, for live changes (live_change.hpp):
    // the allow rules as written (allow mode), and the operator's ceiling at create
    // (nullopt: none), which every rule added later must fall inside.
    RuleTexts allow_rules;
    std::optional<std::vector<Rule>> ceiling;
    std::optional<RefreshSettings> refresh;  // nullopt: names stay as resolved
    bool learn = false;                      // learning mode: open, every decision recorded

    const ProtocolRules& rules(Protocol p) const;

    // The decision for one destination. ip may be either family; an IPv4-mapped IPv6
    // address is judged as its IPv4 address. For Icmp the port is ignored.
    //   loopback destination and loopback=allow: allowed, whatever the rules say;
    //   loopback=deny: judged by the rules in allow mode, denied in deny and open mode
    //   (default-allow modes would otherwise never refuse it);
    //   allow mode: allowed iff a rule of that protocol matches;
    //   deny mode: denied iff an entry matches (entries with ports never match ICMP);
    //   open mode: allowed.
    Verdict check(Protocol protocol, const IpAddr& ip, std::uint16_t port) const;

    // Whether bind() to this TCP/UDP port is allowed (port 0, the kernel's choice, is
    // not in any range: the caller decides whether autobind is a bind).
    bool bind_allowed(std::uint16_t port) const;

    // The TCP ports Landlock may restrict connect() to, or nullopt when it must not
    // restrict ports at all. Landlock rules can only be tightened once installed, and the
    // policy can be widened live within the ceiling, so the ports are the ceiling's, not
    // the current rules': nullopt without a ceiling, outside allow mode, with the loopback
    // bypass on (any port to loopback is allowed), or when a TCP ceiling rule allows every
    // port. An empty vector: no TCP at all.
    std::optional<std::vector<std::uint16_t>> landlock_connect_ports() const;

    bool operator==(const ResolvedPolicy&) const = default;
};

// Resolves the policy's host names (each name once), per protocol as sandlock's
// resolve_net_allow does. Throws sandlock::Error, e.g.
//   io.sandlock.network.allow: cannot resolve host "nope.invalid": Name or service not known
// default_loopback applies when the annotation is absent (the contract: allow with a
// private network namespace; the runtime chooses for a shared one).
ResolvedPolicy resolve(Policy policy, Resolver& resolver, Loopback default_loopback = Loopback::Allow);

// JSON. serialize() is the compact form that create hands the shim (egress.json: one
// string per destination); to_json() the readable one (one object per destination) that
// `egress --format json` shows. from_json and deserialize_policy read either, validate
// everything and throw sandlock::Error("egress policy: ...") on malformed input.
void to_json(nlohmann::json& j, const ResolvedPolicy& p);
void from_json(const nlohmann::json& j, ResolvedPolicy& p);
std::string serialize(const ResolvedPolicy& p);
ResolvedPolicy deserialize_policy(std::string_view text);

}  // namespace sandlock::egress

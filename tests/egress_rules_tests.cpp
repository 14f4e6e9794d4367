// The io.sandlock.network.allow grammar. The first part ports every test of
// sandlock-core 0.8.0's network.rs test module (same names); the rest covers the
// extensions (bracketed IPv6, CIDR, IP literals), exact error texts and the list splitter.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <functional>
#include <ostream>
#include <string>

#include "runtime/egress/hosts.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/egress/rules.hpp"
#include "tests/printers.hpp"

namespace egress_rules {
using namespace sandlock::egress;

// The what() of the error f throws; fails the test if it throws nothing.
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const sandlock::Error& e) {
        return e.what();
    }
    BOOST_FAIL("expected an error");
    return {};
}

std::string parse_error(const std::string& rule) {
    return error_of([&] { parse_rule(rule); });
}

// The RuleError parse_rule throws (rule and reason checked by the caller).
RuleError rule_error(const std::string& rule) {
    try {
        parse_rule(rule);
    } catch (const RuleError& e) {
        return e;
    }
    BOOST_FAIL("expected a RuleError for " + rule);
    throw;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

bool has_port(const std::vector<std::uint16_t>& ports, std::uint16_t p) {
    return std::find(ports.begin(), ports.end(), p) != ports.end();
}

// resolve() of an allow policy with these rules, through the real resolver: as in
// sandlock's tests the only name is "localhost" (from /etc/hosts, no network).
ResolvedPolicy resolve_rules(std::vector<Rule> rules) {
    Policy p;
    p.mode = Mode::Allow;
    p.network_keys = true;
    p.allow = std::move(rules);
    SystemResolver resolver;
    return resolve(p, resolver);
}

Rule rule(Protocol proto, std::optional<std::string> host, std::vector<std::uint16_t> ports, bool all_ports) {
    return Rule{proto, std::move(host), std::nullopt, std::move(ports), all_ports};
}

bool is_local(const IpAddr& ip) { return ip == IpAddr::v4(127, 0, 0, 1) || ip == *IpAddr::parse("::1"); }

}  // namespace egress_rules

BOOST_AUTO_TEST_SUITE(egress_rules)

// ---- ported from sandlock-core 0.8.0 network.rs: NetAllow::parse ----------------------

BOOST_AUTO_TEST_CASE(netallow_parse_concrete_host_port) {
    const auto r = parse_rule("example.com:443");
    BOOST_TEST(r.host.value_or("") == "example.com");
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{443});
    BOOST_TEST(!r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_any_host_port) {
    auto r = parse_rule(":8080");
    BOOST_TEST(!r.host.has_value());
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{8080});
    BOOST_TEST(!r.all_ports);

    r = parse_rule("*:8080");
    BOOST_TEST(!r.host.has_value());
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{8080});
    BOOST_TEST(!r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_multiple_ports) {
    const auto r = parse_rule("github.com:22,80,443");
    BOOST_TEST(r.host.value_or("") == "github.com");
    BOOST_TEST(r.ports == (std::vector<std::uint16_t>{22, 80, 443}));
    BOOST_TEST(!r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_wildcard_any_host_any_port_colon) {
    const auto r = parse_rule(":*");
    BOOST_TEST(!r.host.has_value());
    BOOST_TEST(r.ports.empty());
    BOOST_TEST(r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_wildcard_any_host_any_port_star) {
    const auto r = parse_rule("*:*");
    BOOST_TEST(!r.host.has_value());
    BOOST_TEST(r.ports.empty());
    BOOST_TEST(r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_wildcard_concrete_host_any_port) {
    const auto r = parse_rule("example.com:*");
    BOOST_TEST(r.host.value_or("") == "example.com");
    BOOST_TEST(r.ports.empty());
    BOOST_TEST(r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_parse_rejects_mixed_wildcard_and_concrete) {
    BOOST_TEST(contains(parse_error("example.com:80,*"), "cannot mix"));
    BOOST_TEST(contains(parse_error("example.com:*,80"), "cannot mix"));
}

BOOST_AUTO_TEST_CASE(netallow_parse_rejects_port_zero) {
    BOOST_TEST(contains(parse_error("example.com:0"), "port 0"));
}

BOOST_AUTO_TEST_CASE(netallow_parse_rejects_empty_port) {
    BOOST_TEST(contains(parse_error("example.com:"), "invalid port"));
}

BOOST_AUTO_TEST_CASE(netallow_parse_rejects_no_colon) {
    BOOST_TEST(contains(parse_error("example.com"), "expected"));
}

BOOST_AUTO_TEST_CASE(netallow_parse_repeated_wildcard_is_idempotent) {
    const auto r = parse_rule(":*,*");
    BOOST_TEST(r.all_ports);
    BOOST_TEST(r.ports.empty());
}

BOOST_AUTO_TEST_CASE(netallow_bare_form_defaults_to_tcp) {
    BOOST_TEST((parse_rule("example.com:443").protocol == Protocol::Tcp));
}

BOOST_AUTO_TEST_CASE(netallow_explicit_tcp_scheme) {
    const auto r = parse_rule("tcp://example.com:443");
    BOOST_TEST((r.protocol == Protocol::Tcp));
    BOOST_TEST(r.host.value_or("") == "example.com");
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{443});
}

BOOST_AUTO_TEST_CASE(netallow_udp_scheme_with_host_port) {
    const auto r = parse_rule("udp://1.1.1.1:53");
    BOOST_TEST((r.protocol == Protocol::Udp));
    BOOST_TEST(r.host.value_or("") == "1.1.1.1");
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{53});
}

BOOST_AUTO_TEST_CASE(netallow_udp_wildcard_any_anywhere) {
    const auto r = parse_rule("udp://*:*");
    BOOST_TEST((r.protocol == Protocol::Udp));
    BOOST_TEST(!r.host.has_value());
    BOOST_TEST(r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_icmp_scheme_with_host) {
    const auto r = parse_rule("icmp://github.com");
    BOOST_TEST((r.protocol == Protocol::Icmp));
    BOOST_TEST(r.host.value_or("") == "github.com");
    BOOST_TEST(r.ports.empty());
    BOOST_TEST(!r.all_ports);
}

BOOST_AUTO_TEST_CASE(netallow_icmp_wildcard) {
    const auto r = parse_rule("icmp://*");
    BOOST_TEST((r.protocol == Protocol::Icmp));
    BOOST_TEST(!r.host.has_value());
}

BOOST_AUTO_TEST_CASE(netallow_icmp_rejects_port) {
    BOOST_TEST(contains(parse_error("icmp://github.com:80"), "icmp rules take no port"));
}

BOOST_AUTO_TEST_CASE(netallow_icmp_rejects_empty_body) {
    BOOST_TEST(contains(parse_error("icmp://"), "needs a host or `*`"));
}

BOOST_AUTO_TEST_CASE(netallow_unknown_scheme_rejected) {
    for (const std::string spec : {"sctp://host:1234", "icmp-raw://*"})
        BOOST_TEST(contains(parse_error(spec), "unknown scheme"), "spec: " << spec);
}

// ---- ported from sandlock-core 0.8.0 network.rs: resolve_net_allow --------------------

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_empty) {
    const auto resolved = resolve_rules({});
    BOOST_TEST(resolved.tcp.per_ip.empty());
    BOOST_TEST(resolved.tcp.any_ip_ports.empty());
    BOOST_TEST(resolved.udp.per_ip.empty());
    BOOST_TEST(resolved.icmp.per_ip.empty());
    BOOST_TEST(resolved.hosts.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_concrete_host) {
    const auto resolved = resolve_rules({rule(Protocol::Tcp, "localhost", {80, 443}, false)});
    BOOST_TEST(!resolved.tcp.per_ip.empty());
    for (const auto& e : resolved.tcp.per_ip) {
        BOOST_TEST(is_local(e.address), e.address.to_string());
        BOOST_TEST(has_port(e.ports, 80));
        BOOST_TEST(has_port(e.ports, 443));
    }
    BOOST_TEST(resolved.udp.per_ip.empty());
    BOOST_TEST(resolved.icmp.per_ip.empty());
    BOOST_REQUIRE_EQUAL(resolved.hosts.size(), 1u);
    BOOST_TEST(resolved.hosts[0].name == "localhost");
    BOOST_TEST(contains(hosts_with_policy("", resolved), "localhost"));
}

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_any_ip) {
    const auto resolved = resolve_rules({rule(Protocol::Tcp, std::nullopt, {8080}, false)});
    BOOST_TEST(resolved.tcp.per_ip.empty());
    BOOST_TEST(has_port(resolved.tcp.any_ip_ports, 8080));
    BOOST_TEST(!resolved.tcp.any_ip_all_ports);
    BOOST_TEST(resolved.hosts.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_any_ip_all_ports) {
    const auto resolved = resolve_rules({rule(Protocol::Tcp, std::nullopt, {}, true)});
    BOOST_TEST(resolved.tcp.any_ip_all_ports);
    BOOST_TEST(resolved.tcp.per_ip.empty());
    BOOST_TEST(resolved.tcp.any_ip_ports.empty());
    BOOST_TEST(!resolved.udp.any_ip_all_ports);
    BOOST_TEST(!resolved.icmp.any_ip_all_ports);
}

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_concrete_host_all_ports) {
    const auto resolved = resolve_rules({rule(Protocol::Tcp, "localhost", {}, true)});
    BOOST_TEST(!resolved.tcp.any_ip_all_ports);
    BOOST_TEST(!resolved.tcp.per_ip.empty(), "localhost should resolve to at least one IP marked as any-port");
    for (const auto& e : resolved.tcp.per_ip) {
        BOOST_TEST(e.all_ports);  // sandlock: per_ip_all_ports, and in per_ip
        BOOST_TEST(e.ports.empty());
    }
    BOOST_TEST(!resolved.hosts.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_net_allow_mixed_wildcard_and_concrete) {
    const auto resolved = resolve_rules(
        {rule(Protocol::Tcp, std::nullopt, {}, true), rule(Protocol::Tcp, "localhost", {22}, false)});
    BOOST_TEST(resolved.tcp.any_ip_all_ports);
    BOOST_TEST(!resolved.tcp.per_ip.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_per_protocol_isolation) {
    const auto resolved = resolve_rules(
        {rule(Protocol::Tcp, "localhost", {443}, false), rule(Protocol::Udp, std::nullopt, {53}, false)});
    BOOST_TEST(!resolved.tcp.per_ip.empty(), "TCP rule should populate tcp set");
    BOOST_TEST(has_port(resolved.udp.any_ip_ports, 53), "UDP rule should populate udp set");
    for (const auto& e : resolved.tcp.per_ip) BOOST_TEST(!has_port(e.ports, 53), "UDP port leaked into TCP set");
    BOOST_TEST(!has_port(resolved.udp.any_ip_ports, 443), "TCP port leaked into UDP set");
    BOOST_TEST(resolved.tcp.any_ip_ports.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_icmp_no_ports) {
    const auto resolved = resolve_rules({rule(Protocol::Icmp, "localhost", {}, false)});
    BOOST_TEST(!resolved.icmp.per_ip.empty(), "icmp host should populate per_ip");
    for (const auto& e : resolved.icmp.per_ip) BOOST_TEST(e.all_ports, "icmp host should be any-port (no port check)");
    BOOST_TEST(resolved.icmp.any_ip_ports.empty());
    BOOST_TEST(resolved.tcp.per_ip.empty());
    BOOST_TEST(resolved.udp.per_ip.empty());
}

BOOST_AUTO_TEST_CASE(test_resolve_icmp_wildcard) {
    const auto resolved = resolve_rules({rule(Protocol::Icmp, std::nullopt, {}, false)});
    BOOST_TEST(resolved.icmp.any_ip_all_ports);
    BOOST_TEST(!resolved.tcp.any_ip_all_ports);
}

// ---- sandlock's exact error texts ------------------------------------------------------

BOOST_AUTO_TEST_CASE(sandlock_error_texts_are_exact) {
    BOOST_TEST(parse_error("sctp://host:1234") ==
               "--net-allow: unknown scheme `sctp://` in `sctp://host:1234` (expected tcp, udp, icmp)");
    BOOST_TEST(parse_error("example.com") == "--net-allow: expected `host:port` or `:port`, got `example.com`");
    BOOST_TEST(parse_error("example.com:http") == "--net-allow: invalid port `http` in `example.com:http`");
    BOOST_TEST(parse_error("example.com:") == "--net-allow: invalid port `` in `example.com:`");
    BOOST_TEST(parse_error("example.com:65536") == "--net-allow: invalid port `65536` in `example.com:65536`");
    BOOST_TEST(parse_error("example.com:-1") == "--net-allow: invalid port `-1` in `example.com:-1`");
    BOOST_TEST(parse_error("foo:0") == "--net-allow: port 0 is not valid in `foo:0`");
    BOOST_TEST(parse_error("example.com:80,*") == "--net-allow: cannot mix `*` with concrete ports in `example.com:80,*`");
    BOOST_TEST(parse_error("icmp://github.com:80") == "--net-allow: icmp rules take no port, got `icmp://github.com:80`");
    BOOST_TEST(parse_error("icmp://") == "--net-allow: icmp rule needs a host or `*`, got `icmp://`");
}

BOOST_AUTO_TEST_CASE(rule_error_carries_rule_and_reason) {
    auto e = rule_error("foo:0");
    BOOST_TEST(e.rule() == "foo:0");
    BOOST_TEST(e.reason() == "port 0 is not valid");
    e = rule_error("foo:x");
    BOOST_TEST(e.reason() == "invalid port \"x\"");
    e = rule_error("sctp://h:1");
    BOOST_TEST(e.reason() == "unknown scheme \"sctp://\" (expected tcp, udp, icmp)");
    BOOST_TEST(rule_error("h").reason() == "expected \"host:port\" or \":port\"");
    BOOST_TEST(rule_error("h:1,*").reason() == "cannot mix \"*\" with concrete ports");
    BOOST_TEST(rule_error("icmp://h:1").reason() == "icmp rules take no port");
    BOOST_TEST(rule_error("icmp://").reason() == "icmp rule needs a host or \"*\"");
}

// sandlock reads ports with Rust's u16::from_str, after trimming each one.
BOOST_AUTO_TEST_CASE(ports_read_like_rust_u16) {
    BOOST_TEST(parse_rule("h:+80").ports == std::vector<std::uint16_t>{80});
    BOOST_TEST(parse_rule("h:0080").ports == std::vector<std::uint16_t>{80});
    BOOST_TEST(parse_rule("h:65535").ports == std::vector<std::uint16_t>{65535});
    BOOST_TEST(parse_rule("h: 22 , 443 ").ports == (std::vector<std::uint16_t>{22, 443}));
    BOOST_TEST(parse_rule("h: * ").all_ports);
    BOOST_TEST(parse_rule("h:80,80").ports == (std::vector<std::uint16_t>{80, 80}));  // kept as written
    BOOST_TEST(parse_error("h:+") == "--net-allow: invalid port `+` in `h:+`");
    BOOST_TEST(parse_error("h:80,") == "--net-allow: invalid port `` in `h:80,`");
    BOOST_TEST(!parse_port_number("8 0"));
    BOOST_TEST(!parse_port_number("0x50"));
    BOOST_TEST(parse_port_number("0").value_or(1) == 0);
}

BOOST_AUTO_TEST_CASE(scheme_split_is_first_separator_port_split_is_last_colon) {
    BOOST_TEST(contains(parse_error("a:1://b:2"), "unknown scheme `a:1://`"));
    BOOST_TEST(contains(parse_error("TCP://h:1"), "unknown scheme `TCP://`"));  // case-sensitive
    const auto r = parse_rule("udp://h:*");
    BOOST_TEST((r.protocol == Protocol::Udp));
    BOOST_TEST(r.all_ports);
}

// ---- extensions: IP literals, bracketed IPv6, CIDR -----------------------------------

BOOST_AUTO_TEST_CASE(ipv4_literal_needs_no_dns) {
    const auto r = parse_rule("udp://1.1.1.1:53");
    BOOST_REQUIRE(r.address.has_value());
    BOOST_TEST(r.address->is_single());
    BOOST_TEST(r.address->base == IpAddr::v4(1, 1, 1, 1));
    BOOST_TEST(!parse_rule("example.com:443").address.has_value());
    // Not a dotted quad: a name, for the resolver.
    BOOST_TEST(!parse_rule("127.1:80").address.has_value());
    BOOST_TEST(!parse_rule("1.2.3.4.5:80").address.has_value());
}

BOOST_AUTO_TEST_CASE(bracketed_ipv6_host) {
    const auto r = parse_rule("tcp://[2606:4700::1111]:443");
    BOOST_TEST((r.protocol == Protocol::Tcp));
    BOOST_TEST(r.host.value_or("") == "2606:4700::1111");
    BOOST_REQUIRE(r.address.has_value());
    BOOST_TEST(r.address->base == *IpAddr::parse("2606:4700::1111"));
    BOOST_TEST(r.address->prefix == 128);
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{443});

    const auto loop = parse_rule("[::1]:80");
    BOOST_TEST(loop.address->base == *IpAddr::parse("::1"));
    BOOST_TEST(parse_rule("udp://[::1]:53,5353").ports == (std::vector<std::uint16_t>{53, 5353}));
    BOOST_TEST(parse_rule("[::1]:*").all_ports);
}

// sandlock splits at the last ':' and then reads the host as an address, so an
// unbracketed IPv6 host with a port is accepted (the last group is the port).
BOOST_AUTO_TEST_CASE(unbracketed_ipv6_host_as_sandlock_reads_it) {
    const auto r = parse_rule("2606:4700::1111:443");
    BOOST_TEST(r.address->base == *IpAddr::parse("2606:4700::1111"));
    BOOST_TEST(r.ports == std::vector<std::uint16_t>{443});
    BOOST_TEST(parse_error("foo:bar:80") == "--net-allow: invalid IPv6 address `foo:bar` in `foo:bar:80`");
}

BOOST_AUTO_TEST_CASE(malformed_bracketed_hosts) {
    BOOST_TEST(parse_error("[::1:80") == "--net-allow: missing `]` in `[::1:80`");
    BOOST_TEST(parse_error("[::1]") == "--net-allow: expected `host:port` or `:port`, got `[::1]`");
    BOOST_TEST(parse_error("[::1]80") == "--net-allow: unexpected `80` after `]` in `[::1]80`");
    BOOST_TEST(parse_error("[foo]:80") == "--net-allow: invalid IPv6 address `foo` in `[foo]:80`");
    BOOST_TEST(parse_error("[]:80") == "--net-allow: invalid IPv6 address `` in `[]:80`");
    BOOST_TEST(parse_error("[1.2.3.4]:80") == "--net-allow: invalid IPv6 address `1.2.3.4` in `[1.2.3.4]:80`");
    BOOST_TEST(parse_error("[fe80::1%eth0]:80") == "--net-allow: invalid IPv6 address `fe80::1%eth0` in `[fe80::1%eth0]:80`");
    // Ports are judged first, so a rule sandlock refuses keeps sandlock's text.
    BOOST_TEST(parse_error("[foo]:0") == "--net-allow: port 0 is not valid in `[foo]:0`");
    auto e = rule_error("[::1:80");
    BOOST_TEST(e.reason() == "missing \"]\"");
    BOOST_TEST(rule_error("[foo]:80").reason() == "invalid IPv6 address \"foo\"");
}

BOOST_AUTO_TEST_CASE(cidr_hosts) {
    const auto v4 = parse_rule("10.0.0.0/8:5432");
    BOOST_TEST(v4.host.value_or("") == "10.0.0.0/8");
    BOOST_REQUIRE(v4.address.has_value());
    BOOST_TEST(v4.address->base == IpAddr::v4(10, 0, 0, 0));
    BOOST_TEST(v4.address->prefix == 8);
    BOOST_TEST(v4.ports == std::vector<std::uint16_t>{5432});

    const auto v6 = parse_rule("[fd00::/8]:*");
    BOOST_TEST(v6.host.value_or("") == "fd00::/8");
    BOOST_TEST(v6.address->base == *IpAddr::parse("fd00::"));
    BOOST_TEST(v6.address->prefix == 8);
    BOOST_TEST(v6.all_ports);

    // Host bits are cleared: the block is what the prefix says.
    const auto masked = parse_rule("10.1.2.3/8:1");
    BOOST_TEST(masked.address->base == IpAddr::v4(10, 0, 0, 0));
    BOOST_TEST(parse_rule("0.0.0.0/0:443").address->prefix == 0);
    BOOST_TEST(parse_rule("1.2.3.4/32:443").address->is_single());
    BOOST_TEST(parse_rule("udp://192.168.0.0/16:53").address->prefix == 16);
}

BOOST_AUTO_TEST_CASE(malformed_cidr_hosts) {
    BOOST_TEST(parse_error("10.0.0.0/33:1") == "--net-allow: invalid prefix length `33` in `10.0.0.0/33:1`");
    BOOST_TEST(parse_error("1.2.3.4/x:1") == "--net-allow: invalid prefix length `x` in `1.2.3.4/x:1`");
    BOOST_TEST(parse_error("1.2.3.4/:1") == "--net-allow: invalid prefix length `` in `1.2.3.4/:1`");
    BOOST_TEST(parse_error("1.2.3.4/+8:1") == "--net-allow: invalid prefix length `+8` in `1.2.3.4/+8:1`");
    BOOST_TEST(parse_error("[fd00::/129]:1") == "--net-allow: invalid prefix length `129` in `[fd00::/129]:1`");
    BOOST_TEST(parse_error("foo/8:1") == "--net-allow: invalid network address `foo` in `foo/8:1`");
    BOOST_TEST(parse_error("[10.0.0.0/8]:1") == "--net-allow: invalid IPv6 address `10.0.0.0` in `[10.0.0.0/8]:1`");
    BOOST_TEST(rule_error("10.0.0.0/33:1").reason() == "invalid prefix length \"33\"");
    BOOST_TEST(rule_error("foo/8:1").reason() == "invalid network address \"foo\"");
}

BOOST_AUTO_TEST_CASE(icmp_extensions) {
    const auto v6 = parse_rule("icmp://[::1]");
    BOOST_TEST((v6.protocol == Protocol::Icmp));
    BOOST_TEST(v6.address->base == *IpAddr::parse("::1"));
    const auto net = parse_rule("icmp://10.0.0.0/8");
    BOOST_TEST(net.address->prefix == 8);
    BOOST_TEST(parse_rule("icmp://8.8.8.8").address->base == IpAddr::v4(8, 8, 8, 8));
    BOOST_TEST(parse_error("icmp://[::1]:80") == "--net-allow: icmp rules take no port, got `icmp://[::1]:80`");
    BOOST_TEST(parse_error("icmp://::1") == "--net-allow: icmp rules take no port, got `icmp://::1`");
    BOOST_TEST(parse_error("icmp://[::1") == "--net-allow: missing `]` in `icmp://[::1`");
    BOOST_TEST(parse_error("icmp://[::1]x") == "--net-allow: unexpected `x` after `]` in `icmp://[::1]x`");
    BOOST_TEST(parse_error("icmp://10.0.0.0/99") == "--net-allow: invalid prefix length `99` in `icmp://10.0.0.0/99`");
}

// ---- addresses -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ip_addresses_parse_print_and_normalize) {
    BOOST_TEST(IpAddr::parse("192.0.2.1")->to_string() == "192.0.2.1");
    BOOST_TEST(IpAddr::parse("2001:DB8::1")->to_string() == "2001:db8::1");
    BOOST_TEST(!IpAddr::parse("256.0.0.1"));
    BOOST_TEST(!IpAddr::parse("localhost"));
    BOOST_TEST(!IpAddr::parse(""));
    const auto mapped = *IpAddr::parse("::ffff:10.0.0.1");
    BOOST_TEST(!mapped.is_v4());
    BOOST_TEST(normalize(mapped) == IpAddr::v4(10, 0, 0, 1));
    BOOST_TEST(normalize(*IpAddr::parse("::10.0.0.1")) == *IpAddr::parse("::10.0.0.1"));  // v4-compatible: not mapped
    BOOST_TEST(normalize(*IpAddr::parse("64:ff9b::a00:1")) == *IpAddr::parse("64:ff9b::a00:1"));
    BOOST_TEST(normalize(IpAddr::v4(1, 2, 3, 4)) == IpAddr::v4(1, 2, 3, 4));
}

BOOST_AUTO_TEST_CASE(cidr_contains_at_the_edges) {
    const auto net = *Cidr::parse("172.16.0.0/12");
    BOOST_TEST(net.contains(IpAddr::v4(172, 16, 0, 0)));
    BOOST_TEST(net.contains(IpAddr::v4(172, 31, 255, 255)));
    BOOST_TEST(!net.contains(IpAddr::v4(172, 32, 0, 0)));
    BOOST_TEST(!net.contains(IpAddr::v4(172, 15, 255, 255)));
    BOOST_TEST(!net.contains(*IpAddr::parse("::ffff:172.16.0.1")));  // families differ; check() normalizes
    const auto v6 = *Cidr::parse("fe80::/10");
    BOOST_TEST(v6.contains(*IpAddr::parse("febf:ffff::1")));
    BOOST_TEST(!v6.contains(*IpAddr::parse("fec0::1")));
    BOOST_TEST(Cidr::parse("0.0.0.0/0")->contains(IpAddr::v4(255, 255, 255, 255)));
    BOOST_TEST(!Cidr::parse("0.0.0.0/0")->contains(*IpAddr::parse("::1")));
    BOOST_TEST(Cidr::parse("10.9.8.7/32")->contains(IpAddr::v4(10, 9, 8, 7)));
    BOOST_TEST(!Cidr::parse("10.9.8.7/32")->contains(IpAddr::v4(10, 9, 8, 6)));
    BOOST_TEST(Cidr::parse("10.1.2.3/8")->to_string() == "10.0.0.0/8");
    BOOST_TEST(Cidr::parse("2001:db8::1/128")->to_string() == "2001:db8::1");
    BOOST_TEST(!Cidr::parse("10.0.0.0/33"));
}

// ---- lists -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rule_lists_split_on_semicolons) {
    const auto rules = parse_rule_list(" api.github.com:443 ;github.com:22,443;\n udp://1.1.1.1:53 ; ");
    BOOST_REQUIRE_EQUAL(rules.size(), 3u);
    BOOST_TEST(rules[0].host.value_or("") == "api.github.com");
    BOOST_TEST(rules[1].ports == (std::vector<std::uint16_t>{22, 443}));
    BOOST_TEST((rules[2].protocol == Protocol::Udp));
    // Empty entries are skipped (a trailing ';', a blank line).
    BOOST_TEST(parse_rule_list(";;:53;;").size() == 1u);
    BOOST_TEST(split_list(" ; \t;").empty());
    BOOST_TEST(error_of([] { parse_rule_list(""); }) == "empty rule list");
    BOOST_TEST(error_of([] { parse_rule_list(" ; "); }) == "empty rule list");
    BOOST_TEST(error_of([] { parse_rule_list("a:1;b:0"); }) == "--net-allow: port 0 is not valid in `b:0`");
}

BOOST_AUTO_TEST_SUITE_END()

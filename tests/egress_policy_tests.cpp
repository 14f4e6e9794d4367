// Annotations -> Policy -> ResolvedPolicy -> Verdict, /etc/hosts and JSON.
// No DNS: names go through a fake resolver (the real one is only asked for localhost).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <functional>
#include <map>
#include <ostream>
#include <string>

#include <netdb.h>
#include <nlohmann/json.hpp>

#include "runtime/egress/hosts.hpp"
#include "runtime/egress/policy.hpp"
#include "tests/printers.hpp"

namespace egress_policy {
using namespace sandlock::egress;

using Annotations = std::map<std::string, std::string>;

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const sandlock::Error& e) {
        return e.what();
    }
    BOOST_FAIL("expected an error");
    return {};
}

std::string policy_error(const Annotations& a) {
    return error_of([&] { parse_policy(a); });
}

IpAddr ip(const char* text) {
    const auto parsed = IpAddr::parse(text);
    BOOST_REQUIRE_MESSAGE(parsed.has_value(), text);
    return *parsed;
}

class FakeResolver final : public Resolver {
public:
    std::map<std::string, std::vector<IpAddr>> names;
    std::map<std::string, int> lookups;

    std::vector<IpAddr> lookup(const std::string& host) override {
        ++lookups[host];
        const auto it = names.find(host);
        if (it == names.end()) throw sandlock::Error(gai_strerror(EAI_NONAME));
        return it->second;
    }
};

FakeResolver fake_dns() {
    FakeResolver r;
    r.names["example.com"] = {ip("93.184.216.34"), ip("2606:2800:220:1:248:1893:25c8:1946")};
    r.names["db.internal"] = {ip("10.1.2.3")};
    r.names["mapped.test"] = {ip("::ffff:192.0.2.7"), ip("192.0.2.7")};
    r.names["empty.test"] = {};
    return r;
}

ResolvedPolicy resolved(const Annotations& a, Loopback default_loopback = Loopback::Allow) {
    auto dns = fake_dns();
    return resolve(parse_policy(a), dns, default_loopback);
}

const Verdict kAllowRule{Decision::Allow, Reason::AllowRule};
const Verdict kNoAllowRule{Decision::Deny, Reason::NoAllowRule};
const Verdict kDenyRule{Decision::Deny, Reason::DenyRule};
const Verdict kNotDenied{Decision::Allow, Reason::NotDenied};
const Verdict kLoopbackAllowed{Decision::Allow, Reason::Loopback};
const Verdict kLoopbackDenied{Decision::Deny, Reason::Loopback};
const Verdict kOpen{Decision::Allow, Reason::Open};

constexpr auto TCP = Protocol::Tcp;
constexpr auto UDP = Protocol::Udp;
constexpr auto ICMP = Protocol::Icmp;

}  // namespace egress_policy

BOOST_AUTO_TEST_SUITE(egress_policy)

// ---- parse_policy ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(inactive_without_network_keys) {
    BOOST_TEST(!parse_policy({}).active());
    const auto audit_only = parse_policy({{"io.sandlock.audit", "all"}});
    BOOST_TEST(!audit_only.active());
    BOOST_TEST((audit_only.audit == Audit::All));
    // Other keys, including other io.sandlock.* ones, are not ours to judge.
    BOOST_TEST(!parse_policy({{"io.sandlock.fs.readonly", "/x"}, {"org.example", "1"}, {"io.sandlock.networkx", "1"}}).active());
    BOOST_TEST(parse_policy({{"io.sandlock.network.loopback", "deny"}}).active());
    BOOST_TEST(parse_policy({{"io.sandlock.network.allow_bind", "8080"}}).active());
}

BOOST_AUTO_TEST_CASE(allow_key) {
    const auto p = parse_policy({{"io.sandlock.network.allow", "api.github.com:443; udp://1.1.1.1:53 ;icmp://*"}});
    BOOST_TEST(p.active());
    BOOST_TEST((p.mode == Mode::Allow));
    BOOST_REQUIRE_EQUAL(p.allow.size(), 3u);
    BOOST_TEST(p.allow[0].host.value_or("") == "api.github.com");
    BOOST_TEST((p.allow[1].protocol == Protocol::Udp));
    BOOST_TEST((p.allow[2].protocol == Protocol::Icmp));
    BOOST_TEST(p.deny.empty());
    BOOST_TEST(!p.allow_bind.has_value());
    BOOST_TEST(!p.loopback.has_value());
    BOOST_TEST((p.audit == Audit::Off));
}

BOOST_AUTO_TEST_CASE(allow_value_errors_name_key_rule_and_reason) {
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "foo:0"}}) ==
               "io.sandlock.network.allow: rule \"foo:0\": port 0 is not valid");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "a:443; foo:x"}}) ==
               "io.sandlock.network.allow: rule \"foo:x\": invalid port \"x\"");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "example.com"}}) ==
               "io.sandlock.network.allow: rule \"example.com\": expected \"host:port\" or \":port\"");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "sctp://h:1"}}) ==
               "io.sandlock.network.allow: rule \"sctp://h:1\": unknown scheme \"sctp://\" (expected tcp, udp, icmp)");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "h:80,*"}}) ==
               "io.sandlock.network.allow: rule \"h:80,*\": cannot mix \"*\" with concrete ports");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "icmp://h:1"}}) ==
               "io.sandlock.network.allow: rule \"icmp://h:1\": icmp rules take no port");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "icmp://"}}) ==
               "io.sandlock.network.allow: rule \"icmp://\": icmp rule needs a host or \"*\"");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "[::1:80"}}) ==
               "io.sandlock.network.allow: rule \"[::1:80\": missing \"]\"");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "10.0.0.0/33:1"}}) ==
               "io.sandlock.network.allow: rule \"10.0.0.0/33:1\": invalid prefix length \"33\"");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", ""}}) == "io.sandlock.network.allow: empty value");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", " \n "}}) == "io.sandlock.network.allow: empty value");
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", ";;"}}) == "io.sandlock.network.allow: no entries in \";;\"");
}

BOOST_AUTO_TEST_CASE(allow_and_deny_cannot_be_combined) {
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "a:1"}, {"io.sandlock.network.deny", "private"}}) ==
               "io.sandlock.network.deny: cannot be combined with io.sandlock.network.allow");
    // Even when one of them is malformed: the combination is the first thing wrong.
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "a:0"}, {"io.sandlock.network.deny", ""}}) ==
               "io.sandlock.network.deny: cannot be combined with io.sandlock.network.allow");
}

BOOST_AUTO_TEST_CASE(unknown_network_key_is_an_error) {
    BOOST_TEST(policy_error({{"io.sandlock.network.alow", "a:1"}}) ==
               "io.sandlock.network.alow: unknown annotation (expected one of io.sandlock.network.allow, "
               "io.sandlock.network.deny, io.sandlock.network.allow_bind, io.sandlock.network.loopback, io.sandlock.network.profile, "
               "io.sandlock.network.learn)");
    BOOST_TEST(policy_error({{"io.sandlock.network.", ""}}).starts_with("io.sandlock.network.: unknown annotation"));
}

BOOST_AUTO_TEST_CASE(deny_entries) {
    const auto p = parse_policy({{"io.sandlock.network.deny", "192.0.2.1; 198.51.100.0/24 ;:25;203.0.113.9:80,443;[2001:db8::1]:22;[2001:db8::/32];*:6667"}});
    BOOST_TEST((p.mode == Mode::Deny));
    BOOST_REQUIRE_EQUAL(p.deny.size(), 7u);
    BOOST_TEST((p.deny[0] == DenyRule{Cidr::single(ip("192.0.2.1")), {}, true}));
    BOOST_TEST((p.deny[1] == DenyRule{Cidr::parse("198.51.100.0/24"), {}, true}));
    BOOST_TEST((p.deny[2] == DenyRule{std::nullopt, {25}, false}));
    BOOST_TEST((p.deny[3] == DenyRule{Cidr::single(ip("203.0.113.9")), {80, 443}, false}));
    BOOST_TEST((p.deny[4] == DenyRule{Cidr::single(ip("2001:db8::1")), {22}, false}));
    BOOST_TEST((p.deny[5] == DenyRule{Cidr::parse("2001:db8::/32"), {}, true}));
    BOOST_TEST((p.deny[6] == DenyRule{std::nullopt, {6667}, false}));
    // `*` alone: every destination (but loopback, by default).
    BOOST_TEST((parse_deny_entry("*") == std::vector<DenyRule>{DenyRule{std::nullopt, {}, true}}));
}

BOOST_AUTO_TEST_CASE(deny_private_expands_to_the_documented_blocks) {
    std::vector<std::string> blocks;
    for (const auto& c : private_networks()) blocks.push_back(c.to_string());
    BOOST_TEST(blocks == (std::vector<std::string>{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                                                   "100.64.0.0/10", "fc00::/7", "fe80::/10", "255.255.255.255",
                                                   "224.0.0.0/4", "ff00::/8", "64:ff9b::/96"}),
               boost::test_tools::per_element());
    const auto p = parse_policy({{"io.sandlock.network.deny", "private"}});
    BOOST_REQUIRE_EQUAL(p.deny.size(), private_networks().size());
    for (std::size_t i = 0; i < p.deny.size(); ++i) {
        BOOST_TEST((p.deny[i].network == private_networks()[i]));
        BOOST_TEST(p.deny[i].all_ports);
    }
    const auto on_port = parse_deny_entry("private:443");
    BOOST_TEST(on_port.size() == private_networks().size());
    BOOST_TEST(on_port[0].ports == std::vector<std::uint16_t>{443});
}

BOOST_AUTO_TEST_CASE(deny_errors) {
    const auto deny = [](const std::string& v) { return policy_error({{"io.sandlock.network.deny", v}}); };
    BOOST_TEST(deny("example.com") ==
               "io.sandlock.network.deny: rule \"example.com\": expected an IP address, a CIDR or \"private\", "
               "got \"example.com\" (host names cannot be denied)");
    BOOST_TEST(deny("fd00::1") ==
               "io.sandlock.network.deny: rule \"fd00::1\": IPv6 addresses must be in brackets, as in "
               "\"[fd00::1]\" or \"[fd00::1]:80\"");
    BOOST_TEST(deny("10.0.0.0/33") == "io.sandlock.network.deny: rule \"10.0.0.0/33\": invalid prefix length \"33\"");
    BOOST_TEST(deny("1.2.3.4/x:1") == "io.sandlock.network.deny: rule \"1.2.3.4/x:1\": invalid prefix length \"x\"");
    BOOST_TEST(deny("foo/8") == "io.sandlock.network.deny: rule \"foo/8\": invalid network address \"foo\"");
    BOOST_TEST(deny("[::1") == "io.sandlock.network.deny: rule \"[::1\": missing \"]\"");
    BOOST_TEST(deny("[::1]x") == "io.sandlock.network.deny: rule \"[::1]x\": unexpected \"x\" after \"]\"");
    BOOST_TEST(deny("[10.0.0.1]") == "io.sandlock.network.deny: rule \"[10.0.0.1]\": invalid IPv6 address \"10.0.0.1\"");
    BOOST_TEST(deny("[private]") == "io.sandlock.network.deny: rule \"[private]\": invalid IPv6 address \"private\"");
    BOOST_TEST(deny(":0") == "io.sandlock.network.deny: rule \":0\": port 0 is not valid");
    BOOST_TEST(deny("1.2.3.4:") == "io.sandlock.network.deny: rule \"1.2.3.4:\": invalid port \"\"");
    BOOST_TEST(deny("1.2.3.4:*,80") == "io.sandlock.network.deny: rule \"1.2.3.4:*,80\": cannot mix \"*\" with concrete ports");
    BOOST_TEST(deny("") == "io.sandlock.network.deny: empty value");
    // What parse_deny_entry throws on its own.
    BOOST_TEST(error_of([] { parse_deny_entry("foo/8"); }) == "rule \"foo/8\": invalid network address \"foo\"");
}

BOOST_AUTO_TEST_CASE(allow_bind_ports_and_ranges) {
    const auto p = parse_policy({{"io.sandlock.network.allow_bind", "8000-8100; 22 ;443;8050-8200"}});
    BOOST_REQUIRE(p.allow_bind.has_value());
    BOOST_TEST((*p.allow_bind == std::vector<PortRange>{{8000, 8100}, {22, 22}, {443, 443}, {8050, 8200}}));
    BOOST_TEST((p.mode == Mode::Open));
    BOOST_TEST((parse_port_range(" 1 - 65535 ") == PortRange{1, 65535}));
    BOOST_TEST((parse_port_range("80-80") == PortRange{80, 80}));
    const auto bind = [](const std::string& v) { return policy_error({{"io.sandlock.network.allow_bind", v}}); };
    BOOST_TEST(bind("8100-8000") ==
               "io.sandlock.network.allow_bind: rule \"8100-8000\": invalid port range (8100 is greater than 8000)");
    BOOST_TEST(bind("0") == "io.sandlock.network.allow_bind: rule \"0\": port 0 is not valid");
    BOOST_TEST(bind("http") == "io.sandlock.network.allow_bind: rule \"http\": invalid port \"http\"");
    BOOST_TEST(bind("80-") == "io.sandlock.network.allow_bind: rule \"80-\": invalid port \"\"");
    BOOST_TEST(bind("1-2-3") == "io.sandlock.network.allow_bind: rule \"1-2-3\": invalid port \"2-3\"");
    BOOST_TEST(bind("70000") == "io.sandlock.network.allow_bind: rule \"70000\": invalid port \"70000\"");
    BOOST_TEST(bind("*") == "io.sandlock.network.allow_bind: rule \"*\": invalid port \"*\"");
    BOOST_TEST(bind(" ") == "io.sandlock.network.allow_bind: empty value");
}

BOOST_AUTO_TEST_CASE(loopback_and_audit_values) {
    BOOST_TEST((parse_policy({{"io.sandlock.network.loopback", "allow"}}).loopback == Loopback::Allow));
    BOOST_TEST((parse_policy({{"io.sandlock.network.loopback", " deny "}}).loopback == Loopback::Deny));
    BOOST_TEST(policy_error({{"io.sandlock.network.loopback", "yes"}}) ==
               "io.sandlock.network.loopback: invalid value \"yes\" (expected allow, deny)");
    BOOST_TEST(policy_error({{"io.sandlock.network.loopback", "Deny"}}) ==
               "io.sandlock.network.loopback: invalid value \"Deny\" (expected allow, deny)");
    BOOST_TEST(policy_error({{"io.sandlock.network.loopback", ""}}) == "io.sandlock.network.loopback: empty value");
    BOOST_TEST((parse_policy({{"io.sandlock.audit", "off"}}).audit == Audit::Off));
    BOOST_TEST((parse_policy({{"io.sandlock.audit", "deny"}}).audit == Audit::Deny));
    BOOST_TEST((parse_policy({{"io.sandlock.audit", "all"}}).audit == Audit::All));
    BOOST_TEST(policy_error({{"io.sandlock.audit", "verbose"}}) ==
               "io.sandlock.audit: invalid value \"verbose\" (expected off, deny, all)");
    BOOST_TEST(policy_error({{"io.sandlock.audit", ""}}) == "io.sandlock.audit: empty value");
}

// ---- resolution ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(resolve_per_protocol_with_names_literals_and_cidrs) {
    auto dns = fake_dns();
    const auto p = parse_policy({{"io.sandlock.network.allow",
                                  "example.com:443;example.com:80;udp://db.internal:53;1.1.1.1:853;10.0.0.0/8:5432;"
                                  ":22;icmp://example.com;[2001:db8::/32]:*"}});
    const auto r = resolve(p, dns);
    // Each name is looked up once, whatever the number of rules naming it.
    BOOST_TEST(dns.lookups["example.com"] == 1);
    BOOST_TEST(dns.lookups.size() == 2u);
    BOOST_REQUIRE_EQUAL(r.hosts.size(), 2u);
    BOOST_TEST(r.hosts[0].name == "example.com");
    BOOST_TEST(r.hosts[0].addresses.size() == 2u);
    BOOST_TEST(r.hosts[1].name == "db.internal");

    // TCP: example.com's two addresses with 80+443, 1.1.1.1:853, 10/8:5432, any:22, 2001:db8::/32 all ports.
    BOOST_REQUIRE_EQUAL(r.tcp.per_ip.size(), 3u);
    BOOST_TEST(r.tcp.per_ip[0].address == ip("1.1.1.1"));  // sorted
    BOOST_TEST(r.tcp.per_ip[0].ports == std::vector<std::uint16_t>{853});
    BOOST_TEST(r.tcp.per_ip[1].address == ip("93.184.216.34"));
    BOOST_TEST(r.tcp.per_ip[1].ports == (std::vector<std::uint16_t>{80, 443}));
    BOOST_TEST(r.tcp.per_ip[2].address == ip("2606:2800:220:1:248:1893:25c8:1946"));
    BOOST_REQUIRE_EQUAL(r.tcp.per_net.size(), 2u);
    BOOST_TEST(r.tcp.any_ip_ports == std::vector<std::uint16_t>{22});
    BOOST_TEST(!r.tcp.any_ip_all_ports);
    // UDP and ICMP only got their own rules.
    BOOST_REQUIRE_EQUAL(r.udp.per_ip.size(), 1u);
    BOOST_TEST(r.udp.per_ip[0].address == ip("10.1.2.3"));
    BOOST_TEST(r.udp.per_net.empty());
    BOOST_TEST(r.udp.any_ip_ports.empty());
    BOOST_REQUIRE_EQUAL(r.icmp.per_ip.size(), 2u);
    BOOST_TEST(r.icmp.per_ip[0].all_ports);
    BOOST_TEST(r.icmp.per_ip[1].all_ports);
}

BOOST_AUTO_TEST_CASE(resolve_merges_all_ports_and_normalizes_mapped_answers) {
    const auto r = resolved({{"io.sandlock.network.allow", "mapped.test:80;mapped.test:*;mapped.test:443"}});
    BOOST_REQUIRE_EQUAL(r.hosts.size(), 1u);
    BOOST_TEST(r.hosts[0].addresses == std::vector<IpAddr>{ip("192.0.2.7")}, boost::test_tools::per_element());
    BOOST_REQUIRE_EQUAL(r.tcp.per_ip.size(), 1u);
    BOOST_TEST(r.tcp.per_ip[0].all_ports);
    BOOST_TEST(r.tcp.per_ip[0].ports.empty());
}

BOOST_AUTO_TEST_CASE(resolve_errors_name_the_host) {
    BOOST_TEST(error_of([] { resolved({{"io.sandlock.network.allow", "a.test:1;nope.invalid:443"}}); }) ==
               std::string("io.sandlock.network.allow: cannot resolve host \"a.test\": ") + gai_strerror(EAI_NONAME));
    BOOST_TEST(error_of([] { resolved({{"io.sandlock.network.allow", "icmp://nope.invalid"}}); }) ==
               std::string("io.sandlock.network.allow: cannot resolve host \"nope.invalid\": ") + gai_strerror(EAI_NONAME));
    BOOST_TEST(error_of([] { resolved({{"io.sandlock.network.allow", "empty.test:1"}}); }) ==
               "io.sandlock.network.allow: cannot resolve host \"empty.test\": no addresses");
}

BOOST_AUTO_TEST_CASE(literals_and_deny_lists_need_no_resolver) {
    auto dns = fake_dns();
    resolve(parse_policy({{"io.sandlock.network.allow", "1.2.3.4:1;[::1]:2;10.0.0.0/8:3;:4;icmp://*"}}), dns);
    resolve(parse_policy({{"io.sandlock.network.deny", "private;1.2.3.4"}}), dns);
    BOOST_TEST(dns.lookups.empty());
}

BOOST_AUTO_TEST_CASE(system_resolver_reads_localhost_and_literals) {
    SystemResolver dns;
    const auto local = dns.lookup("localhost");
    BOOST_TEST(!local.empty());
    for (const auto& a : local) BOOST_TEST((a == ip("127.0.0.1") || a == ip("::1")), a);
    BOOST_TEST(dns.lookup("192.0.2.1") == std::vector<IpAddr>{ip("192.0.2.1")}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(resolve_copies_modes_and_merges_bind_ranges) {
    const auto r = resolved({{"io.sandlock.network.allow_bind", "8050-8200;8000-8100;22;23;443"},
                             {"io.sandlock.network.loopback", "deny"},
                             {"io.sandlock.audit", "deny"}});
    BOOST_TEST((r.mode == Mode::Open));
    BOOST_TEST((r.loopback == Loopback::Deny));
    BOOST_TEST((r.audit == Audit::Deny));
    BOOST_REQUIRE(r.bind.has_value());
    BOOST_TEST((*r.bind == std::vector<PortRange>{{22, 23}, {443, 443}, {8000, 8200}}));
    BOOST_TEST(r.bind_allowed(22));
    BOOST_TEST(r.bind_allowed(23));
    BOOST_TEST(!r.bind_allowed(24));
    BOOST_TEST(r.bind_allowed(8000));
    BOOST_TEST(r.bind_allowed(8200));
    BOOST_TEST(!r.bind_allowed(8201));
    BOOST_TEST(!r.bind_allowed(0));
    const auto unrestricted = resolved({{"io.sandlock.network.allow", ":443"}});
    BOOST_TEST(!unrestricted.bind.has_value());
    BOOST_TEST(unrestricted.bind_allowed(1));
    BOOST_TEST(unrestricted.bind_allowed(0));
}

BOOST_AUTO_TEST_CASE(default_loopback_applies_only_without_the_annotation) {
    BOOST_TEST((resolved({{"io.sandlock.network.allow", ":1"}}).loopback == Loopback::Allow));
    BOOST_TEST((resolved({{"io.sandlock.network.allow", ":1"}}, Loopback::Deny).loopback == Loopback::Deny));
    BOOST_TEST((resolved({{"io.sandlock.network.allow", ":1"}, {"io.sandlock.network.loopback", "allow"}}, Loopback::Deny)
                    .loopback == Loopback::Allow));
}

// ---- decisions -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(allow_mode_ports_and_hosts) {
    const auto r = resolved({{"io.sandlock.network.allow", "example.com:80,443;1.1.1.1:853;:22"}});
    BOOST_TEST(r.check(TCP, ip("93.184.216.34"), 443) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("93.184.216.34"), 80) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("93.184.216.34"), 8080) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("2606:2800:220:1:248:1893:25c8:1946"), 443) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("93.184.216.35"), 443) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("1.1.1.1"), 853) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("1.1.1.1"), 443) == kNoAllowRule);
    // `:22`: any address on that port.
    BOOST_TEST(r.check(TCP, ip("203.0.113.5"), 22) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("2001:db8::5"), 22) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("203.0.113.5"), 23) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(allow_mode_protocols_are_separate) {
    const auto r = resolved({{"io.sandlock.network.allow", "1.1.1.1:53;udp://8.8.8.8:53;icmp://9.9.9.9"}});
    BOOST_TEST(r.check(TCP, ip("1.1.1.1"), 53) == kAllowRule);
    BOOST_TEST(r.check(UDP, ip("1.1.1.1"), 53) == kNoAllowRule);
    BOOST_TEST(r.check(ICMP, ip("1.1.1.1"), 0) == kNoAllowRule);
    BOOST_TEST(r.check(UDP, ip("8.8.8.8"), 53) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("8.8.8.8"), 53) == kNoAllowRule);
    // ICMP ignores the port field (0, or the echo id of a ping socket).
    BOOST_TEST(r.check(ICMP, ip("9.9.9.9"), 0) == kAllowRule);
    BOOST_TEST(r.check(ICMP, ip("9.9.9.9"), 4242) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("9.9.9.9"), 80) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(allow_mode_wildcards) {
    const auto any_tcp = resolved({{"io.sandlock.network.allow", "*:*"}});
    BOOST_TEST(any_tcp.check(TCP, ip("203.0.113.1"), 1) == kAllowRule);
    BOOST_TEST(any_tcp.check(TCP, ip("2001:db8::1"), 65535) == kAllowRule);
    BOOST_TEST(any_tcp.check(UDP, ip("203.0.113.1"), 53) == kNoAllowRule);
    const auto host_any_port = resolved({{"io.sandlock.network.allow", "example.com:*"}});
    BOOST_TEST(host_any_port.check(TCP, ip("93.184.216.34"), 1) == kAllowRule);
    BOOST_TEST(host_any_port.check(TCP, ip("93.184.216.34"), 65535) == kAllowRule);
    BOOST_TEST(host_any_port.check(TCP, ip("93.184.216.33"), 80) == kNoAllowRule);
    const auto any_ping = resolved({{"io.sandlock.network.allow", "icmp://*"}});
    BOOST_TEST(any_ping.check(ICMP, ip("203.0.113.1"), 0) == kAllowRule);
    BOOST_TEST(any_ping.check(ICMP, ip("2001:db8::1"), 7) == kAllowRule);
    BOOST_TEST(any_ping.check(UDP, ip("203.0.113.1"), 7) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(allow_mode_cidr_edges) {
    const auto r = resolved({{"io.sandlock.network.allow", "172.16.0.0/12:5432;[fd00::/8]:*;udp://0.0.0.0/0:53"}});
    BOOST_TEST(r.check(TCP, ip("172.16.0.0"), 5432) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("172.31.255.255"), 5432) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("172.32.0.0"), 5432) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("172.15.255.255"), 5432) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("172.20.1.1"), 5433) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("fd00::1"), 1) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("fdff:ffff::1"), 65535) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("fe00::1"), 1) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("fc00::1"), 1) == kNoAllowRule);
    // 0.0.0.0/0 is every IPv4 address, and no IPv6 one.
    BOOST_TEST(r.check(UDP, ip("203.0.113.1"), 53) == kAllowRule);
    BOOST_TEST(r.check(UDP, ip("2001:db8::1"), 53) == kNoAllowRule);
    BOOST_TEST(r.check(UDP, ip("203.0.113.1"), 54) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(ipv4_mapped_destinations_are_judged_as_ipv4) {
    const auto allow = resolved({{"io.sandlock.network.allow", "10.0.0.0/8:5432;1.1.1.1:443"}});
    BOOST_TEST(allow.check(TCP, ip("::ffff:10.0.0.1"), 5432) == kAllowRule);
    BOOST_TEST(allow.check(TCP, ip("::ffff:1.1.1.1"), 443) == kAllowRule);
    BOOST_TEST(allow.check(TCP, ip("::ffff:1.1.1.2"), 443) == kNoAllowRule);
    BOOST_TEST(allow.check(TCP, ip("::ffff:10.0.0.1"), 80) == kNoAllowRule);
    const auto deny = resolved({{"io.sandlock.network.deny", "private"}});
    BOOST_TEST(deny.check(TCP, ip("::ffff:10.0.0.1"), 80) == kDenyRule);
    BOOST_TEST(deny.check(UDP, ip("::ffff:169.254.169.254"), 80) == kDenyRule);
    BOOST_TEST(deny.check(TCP, ip("::ffff:8.8.8.8"), 80) == kNotDenied);
    // An IPv6 rule for the mapped form itself never matches: it is judged as IPv4.
    const auto v6rule = resolved({{"io.sandlock.network.allow", "[::ffff:1.1.1.1]:443"}});
    BOOST_TEST(v6rule.check(TCP, ip("1.1.1.1"), 443) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(deny_mode_private) {
    const auto r = resolved({{"io.sandlock.network.deny", "private"}});
    for (const char* a : {"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                          "100.64.0.1", "100.127.255.255", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
                          "255.255.255.255", "224.0.0.1", "239.255.255.250", "ff02::1", "ff05::1:3",
                          "64:ff9b::a00:1", "64:ff9b::c0a8:101"}) {
        BOOST_TEST(r.check(TCP, ip(a), 443) == kDenyRule, a);
        BOOST_TEST(r.check(UDP, ip(a), 53) == kDenyRule, a);
        BOOST_TEST(r.check(ICMP, ip(a), 0) == kDenyRule, a);
    }
    for (const char* a : {"8.8.8.8", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255",
                          "169.253.255.255", "100.63.255.255", "100.128.0.0", "2001:db8::1", "fec0::1", "fbff::1",
                          "255.255.255.254", "223.255.255.255", "240.0.0.1", "feff::1", "64:ff9b:1::a00:1"}) {
        BOOST_TEST(r.check(TCP, ip(a), 443) == kNotDenied, a);
    }
}

BOOST_AUTO_TEST_CASE(deny_mode_ports) {
    const auto r = resolved({{"io.sandlock.network.deny", ":25;203.0.113.9:80,443;198.51.100.7;[2001:db8::/32]:22"}});
    // `:25`: every address, TCP and UDP, never ICMP (no port there).
    BOOST_TEST(r.check(TCP, ip("8.8.8.8"), 25) == kDenyRule);
    BOOST_TEST(r.check(UDP, ip("2001:db8::9"), 25) == kDenyRule);
    BOOST_TEST(r.check(ICMP, ip("8.8.8.8"), 25) == kNotDenied);
    BOOST_TEST(r.check(TCP, ip("8.8.8.8"), 26) == kNotDenied);
    // IP:port: only those ports, not ICMP.
    BOOST_TEST(r.check(TCP, ip("203.0.113.9"), 80) == kDenyRule);
    BOOST_TEST(r.check(UDP, ip("203.0.113.9"), 443) == kDenyRule);
    BOOST_TEST(r.check(TCP, ip("203.0.113.9"), 8080) == kNotDenied);
    BOOST_TEST(r.check(ICMP, ip("203.0.113.9"), 80) == kNotDenied);
    // IP: every port and ICMP.
    BOOST_TEST(r.check(TCP, ip("198.51.100.7"), 1) == kDenyRule);
    BOOST_TEST(r.check(ICMP, ip("198.51.100.7"), 0) == kDenyRule);
    BOOST_TEST(r.check(TCP, ip("198.51.100.8"), 1) == kNotDenied);
    BOOST_TEST(r.check(TCP, ip("2001:db8:1::1"), 22) == kDenyRule);
    BOOST_TEST(r.check(TCP, ip("2001:db9::1"), 22) == kNotDenied);
}

BOOST_AUTO_TEST_CASE(loopback_allow_bypasses_the_rules) {
    const auto allow = resolved({{"io.sandlock.network.allow", "1.1.1.1:443"}});
    for (const char* a : {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"}) {
        BOOST_TEST(allow.check(TCP, ip(a), 8080) == kLoopbackAllowed, a);
        BOOST_TEST(allow.check(UDP, ip(a), 53) == kLoopbackAllowed, a);
        BOOST_TEST(allow.check(ICMP, ip(a), 0) == kLoopbackAllowed, a);
    }
    BOOST_TEST(allow.check(TCP, ip("128.0.0.1"), 8080) == kNoAllowRule);
    BOOST_TEST(allow.check(TCP, ip("::2"), 8080) == kNoAllowRule);
    const auto deny = resolved({{"io.sandlock.network.deny", ":25;*"}});
    BOOST_TEST(deny.check(TCP, ip("127.0.0.1"), 25) == kLoopbackAllowed);
    BOOST_TEST(deny.check(TCP, ip("8.8.8.8"), 443) == kDenyRule);
}

BOOST_AUTO_TEST_CASE(loopback_deny_in_allow_mode_judges_loopback_by_the_rules) {
    const auto r = resolved({{"io.sandlock.network.allow", "127.0.0.1:8080;:53;1.1.1.1:443"},
                             {"io.sandlock.network.loopback", "deny"}});
    BOOST_TEST(r.check(TCP, ip("127.0.0.1"), 8080) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("127.0.0.2"), 8080) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("127.0.0.1"), 53) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("0.0.0.0"), 53) == kAllowRule);
    BOOST_TEST(r.check(TCP, ip("127.0.0.1"), 80) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("::"), 80) == kNoAllowRule);
    BOOST_TEST(r.check(TCP, ip("::ffff:127.0.0.1"), 80) == kNoAllowRule);
    BOOST_TEST(r.check(ICMP, ip("127.0.0.1"), 0) == kNoAllowRule);
}

BOOST_AUTO_TEST_CASE(loopback_deny_outside_allow_mode_denies_loopback) {
    const auto deny = resolved({{"io.sandlock.network.deny", "private"}, {"io.sandlock.network.loopback", "deny"}});
    BOOST_TEST(deny.check(TCP, ip("127.0.0.1"), 80) == kLoopbackDenied);
    BOOST_TEST(deny.check(UDP, ip("::1"), 53) == kLoopbackDenied);
    BOOST_TEST(deny.check(TCP, ip("0.0.0.0"), 80) == kLoopbackDenied);
    BOOST_TEST(deny.check(TCP, ip("8.8.8.8"), 80) == kNotDenied);
    const auto open = resolved({{"io.sandlock.network.loopback", "deny"}});
    BOOST_TEST(open.check(TCP, ip("127.0.0.53"), 53) == kLoopbackDenied);
    BOOST_TEST(open.check(TCP, ip("8.8.8.8"), 80) == kOpen);
    const auto open_loopback_allowed = resolved({{"io.sandlock.network.allow_bind", "80"}});
    BOOST_TEST(open_loopback_allowed.check(TCP, ip("127.0.0.1"), 80) == kLoopbackAllowed);
    BOOST_TEST(open_loopback_allowed.check(UDP, ip("8.8.8.8"), 53) == kOpen);
}

BOOST_AUTO_TEST_CASE(an_allow_list_without_rules_for_a_protocol_refuses_it) {
    const auto r = resolved({{"io.sandlock.network.allow", "udp://:53"}});
    BOOST_TEST(r.check(TCP, ip("8.8.8.8"), 53) == kNoAllowRule);
    BOOST_TEST(r.check(ICMP, ip("8.8.8.8"), 0) == kNoAllowRule);
    BOOST_TEST(r.check(UDP, ip("8.8.8.8"), 53) == kAllowRule);
    BOOST_TEST(r.tcp.empty());
    BOOST_TEST(!r.udp.empty());
}

BOOST_AUTO_TEST_CASE(reaches_loopback_addresses) {
    for (const char* a : {"127.0.0.1", "127.1.2.3", "0.0.0.0", "::1", "::"}) BOOST_TEST(reaches_loopback(ip(a)), a);
    for (const char* a : {"126.255.255.255", "128.0.0.0", "0.0.0.1", "::2", "::ffff:127.0.0.1"})
        BOOST_TEST(!reaches_loopback(ip(a)), a);  // the mapped form only after normalize()
}

BOOST_AUTO_TEST_CASE(landlock_connect_ports_come_from_the_ceiling) {
    // Landlock rules cannot be widened once installed, and a live change may widen the
    // policy up to the ceiling: the ports are the ceiling's, the current rules' never.
    const auto loopback_deny = Annotations::value_type{"io.sandlock.network.loopback", "deny"};
    auto with_ceiling = [&](const char* rules, const char* ceiling) {
        Policy p = parse_policy({{"io.sandlock.network.allow", rules}, loopback_deny});
        p.ceiling = parse_rule_list(ceiling);
        FakeResolver r;
        r.names["example.com"] = {ip("93.184.216.34")};
        return resolve(p, r);
    };
    const auto ports = with_ceiling("example.com:443", "*:443,80;:22;10.0.0.0/8:5432;udp://:53").landlock_connect_ports();
    BOOST_REQUIRE(ports.has_value());
    BOOST_TEST(*ports == (std::vector<std::uint16_t>{22, 80, 443, 5432}), boost::test_tools::per_element());
    const auto udp_only = with_ceiling("udp://:53", "udp://:53").landlock_connect_ports();
    BOOST_REQUIRE(udp_only.has_value());
    BOOST_TEST(udp_only->empty());
    // Not restrictable: no ceiling, a ceiling rule of every port, loopback bypass, deny and open modes.
    BOOST_TEST(!resolved({{"io.sandlock.network.allow", "10.0.0.1:443"}, loopback_deny}).landlock_connect_ports());
    BOOST_TEST(!with_ceiling(":443", ":443;example.com:*").landlock_connect_ports());
    BOOST_TEST(!with_ceiling(":443", "*:*").landlock_connect_ports());
    BOOST_TEST(!resolved({{"io.sandlock.network.allow", ":443"}}).landlock_connect_ports());
    BOOST_TEST(!resolved({{"io.sandlock.network.deny", ":25"}, loopback_deny}).landlock_connect_ports());
    BOOST_TEST(!resolved({loopback_deny}).landlock_connect_ports());
}

BOOST_AUTO_TEST_CASE(verdict_names_for_the_audit_log) {
    BOOST_TEST(std::string(to_string(Decision::Allow)) == "allow");
    BOOST_TEST(std::string(to_string(Decision::Deny)) == "deny");
    BOOST_TEST(std::string(to_string(Reason::NoAllowRule)) == "no-allow-rule");
    BOOST_TEST(std::string(to_string(Reason::Loopback)) == "loopback");
    BOOST_TEST(std::string(to_string(Protocol::Icmp)) == "icmp");
    BOOST_TEST(kAllowRule.allowed());
    BOOST_TEST(!kDenyRule.allowed());
}

// ---- /etc/hosts ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hosts_block_is_appended) {
    const auto r = resolved({{"io.sandlock.network.allow", "example.com:443;udp://db.internal:53;1.1.1.1:853;example.com:80"}});
    const std::string expected =
        "127.0.0.1 localhost\n"
        "# added by sandlock-runc for io.sandlock.network.allow\n"
        "93.184.216.34 example.com\n"
        "2606:2800:220:1:248:1893:25c8:1946 example.com\n"
        "10.1.2.3 db.internal\n";
    BOOST_TEST(hosts_with_policy("127.0.0.1 localhost\n", r) == expected);
    // The existing content is newline-terminated first.
    BOOST_TEST(hosts_with_policy("127.0.0.1 localhost", r) == expected);
    BOOST_TEST(hosts_with_policy("", r) == expected.substr(std::string("127.0.0.1 localhost\n").size()));
}

BOOST_AUTO_TEST_CASE(hosts_block_is_replaced_not_repeated) {
    const auto r = resolved({{"io.sandlock.network.allow", "db.internal:5432"}});
    const auto once = hosts_with_policy("127.0.0.1 localhost\n::1 localhost\n", r);
    BOOST_TEST(hosts_with_policy(once, r) == once);
    const auto other = resolved({{"io.sandlock.network.allow", "example.com:443"}});
    const auto replaced = hosts_with_policy(once, other);
    BOOST_TEST(replaced.find("db.internal") == std::string::npos);
    BOOST_TEST(replaced.starts_with("127.0.0.1 localhost\n::1 localhost\n# added by sandlock-runc"));
    BOOST_TEST(replaced.find("93.184.216.34 example.com\n") != std::string::npos);
    // The marker only counts as a whole line.
    const std::string quoted_marker = "# see '# added by sandlock-runc for io.sandlock.network.allow'\n";
    BOOST_TEST(hosts_with_policy(quoted_marker, r).starts_with(quoted_marker));
}

BOOST_AUTO_TEST_CASE(hosts_without_names_adds_nothing) {
    const auto literals = resolved({{"io.sandlock.network.allow", "1.1.1.1:443;:53;10.0.0.0/8:1"}});
    BOOST_TEST(hosts_with_policy("127.0.0.1 localhost", literals) == "127.0.0.1 localhost\n");
    BOOST_TEST(hosts_with_policy("", literals) == "");
    const auto deny = resolved({{"io.sandlock.network.deny", "private"}});
    BOOST_TEST(hosts_with_policy("a\n", deny) == "a\n");
    // A stale block goes even when the new policy has no names.
    const auto named = hosts_with_policy("a\n", resolved({{"io.sandlock.network.allow", "db.internal:1"}}));
    BOOST_TEST(hosts_with_policy(named, literals) == "a\n");
}

BOOST_AUTO_TEST_CASE(hosts_skips_names_that_would_corrupt_the_file) {
    ResolvedPolicy r;
    r.mode = Mode::Allow;
    r.hosts = {{"bad name", {ip("192.0.2.1")}}, {"evil#x", {ip("192.0.2.2")}}, {"nl\nx", {ip("192.0.2.3")}},
               {"good.test", {ip("192.0.2.4")}}};
    BOOST_TEST(hosts_with_policy("", r) == "# added by sandlock-runc for io.sandlock.network.allow\n192.0.2.4 good.test\n");
}

// ---- JSON ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(json_round_trip) {
    const auto allow = resolved({{"io.sandlock.network.allow",
                                  "example.com:443,80;udp://db.internal:53;:22;icmp://*;10.0.0.0/8:5432;[fd00::/8]:*;"
                                  "mapped.test:*"},
                                 {"io.sandlock.network.allow_bind", "8000-8100;22"},
                                 {"io.sandlock.network.loopback", "deny"},
                                 {"io.sandlock.audit", "all"}});
    const auto text = serialize(allow);
    const auto back = deserialize_policy(text);
    BOOST_TEST((back == allow));
    BOOST_TEST(serialize(back) == text);
    BOOST_TEST(back.check(TCP, ip("93.184.216.34"), 443) == kAllowRule);
    BOOST_TEST(back.check(TCP, ip("127.0.0.1"), 443) == kNoAllowRule);
    BOOST_TEST(back.check(TCP, ip("10.9.9.9"), 5432) == kAllowRule);

    const auto deny = resolved({{"io.sandlock.network.deny", "private;:25"}});
    BOOST_TEST((deserialize_policy(serialize(deny)) == deny));
    const auto open = resolved({{"io.sandlock.network.loopback", "deny"}});
    const auto open_back = deserialize_policy(serialize(open));
    BOOST_TEST((open_back == open));
    BOOST_TEST(!open_back.bind.has_value());
}

BOOST_AUTO_TEST_CASE(json_shape) {
    const auto r = resolved({{"io.sandlock.network.allow", "db.internal:5432,5433;udp://:53"},
                             {"io.sandlock.network.allow_bind", "80"}});
    const auto j = nlohmann::json::parse(serialize(r));
    BOOST_TEST(j.at("version") == 3);
    BOOST_TEST(j.at("mode") == "allow");
    // the rules as written: one string, not one JSON value a rule
    BOOST_TEST(j.at("allow_rules") == "db.internal:5432,5433;udp://*:53");
    BOOST_TEST(j.at("loopback") == "allow");
    BOOST_TEST(j.at("audit") == "off");
    BOOST_TEST(j.at("tcp").at("per_ip").at(0) == "10.1.2.3 5432,5433");
    BOOST_TEST(j.at("udp").at("any_ip_ports") == nlohmann::json({53}));
    BOOST_TEST(j.at("bind") == nlohmann::json::parse("[[80,80]]"));
    BOOST_TEST(j.at("hosts").at(0).at("name") == "db.internal");
}

// A record written by an older build (version 1: destinations as objects) is still read:
// `exec` and `egress` read the record of a running container.
BOOST_AUTO_TEST_CASE(json_version_1_is_still_read) {
    const auto text = R"({"version":1,"mode":"allow","loopback":"allow","audit":"off",
        "tcp":{"any_ip_all_ports":false,"any_ip_ports":[],"per_ip":[{"address":"10.1.2.3","all_ports":false,"ports":[80,443]}],
               "per_net":[{"network":"10.9.0.0/16","all_ports":true,"ports":[]}]},
        "udp":{"any_ip_all_ports":false,"any_ip_ports":[53],"per_ip":[],"per_net":[]},
        "icmp":{"any_ip_all_ports":false,"any_ip_ports":[],"per_ip":[],"per_net":[]},"bind":null,"hosts":[]})";
    const auto p = deserialize_policy(text);
    BOOST_TEST(p.check(TCP, ip("10.1.2.3"), 443) == kAllowRule);
    BOOST_TEST(p.check(TCP, ip("10.1.2.3"), 22) == kNoAllowRule);
    BOOST_TEST(p.check(TCP, ip("10.9.8.7"), 1) == kAllowRule);
    // the same destinations; the rules as written were not kept then (no live change)
    auto expected = resolved({{"io.sandlock.network.allow", "10.1.2.3:80,443;10.9.0.0/16:*;udp://:53"}});
    expected.allow_rules.clear();
    BOOST_TEST((p == expected));
    BOOST_TEST(p.allow_rules.empty());
}

BOOST_AUTO_TEST_CASE(json_input_is_validated_and_normalized) {
    auto j = nlohmann::json::parse(serialize(resolved({{"io.sandlock.network.allow", "1.1.1.1:443;2.2.2.2:80"}})));
    // Unsorted, duplicated input is put back in order: matching relies on it.
    std::swap(j["tcp"]["per_ip"][0], j["tcp"]["per_ip"][1]);
    j["tcp"]["per_ip"].push_back("2.2.2.2 81");
    const auto fixed = deserialize_policy(j.dump());
    BOOST_REQUIRE_EQUAL(fixed.tcp.per_ip.size(), 2u);
    BOOST_TEST(fixed.tcp.per_ip[0].address == ip("1.1.1.1"));
    BOOST_TEST(fixed.tcp.per_ip[1].ports == (std::vector<std::uint16_t>{80, 81}));
    BOOST_TEST(fixed.check(TCP, ip("2.2.2.2"), 81) == kAllowRule);

    const auto broken = [&](const std::function<void(nlohmann::json&)>& edit) {
        auto copy = j;
        edit(copy);
        return error_of([&] { deserialize_policy(copy.dump()); });
    };
    BOOST_TEST(broken([](auto& c) { c["version"] = 4; }) == "egress policy: unsupported version 4");
    BOOST_TEST(broken([](auto& c) { c["mode"] = "maybe"; }) == "egress policy: invalid mode \"maybe\"");
    BOOST_TEST(broken([](auto& c) { c["audit"] = "loud"; }) == "egress policy: invalid audit \"loud\"");
    BOOST_TEST(broken([](auto& c) { c["tcp"]["any_ip_ports"] = {70000}; }) == "egress policy: invalid port 70000");
    BOOST_TEST(broken([](auto& c) { c["tcp"]["any_ip_ports"] = {0}; }) == "egress policy: invalid port 0");
    BOOST_TEST(broken([](auto& c) { c["tcp"]["any_ip_ports"] = {"80"}; }) == "egress policy: invalid port \"80\"");
    BOOST_TEST(broken([](auto& c) { c["tcp"]["per_ip"][0] = "x 80"; }) == "egress policy: invalid address \"x\"");
    for (const char* bad : {"1.1.1.1", "1.1.1.1 ", "1.1.1.1 0", "1.1.1.1 65536", "1.1.1.1 80,", "1.1.1.1 8x", "1.1.1.1 ,80"})
        BOOST_TEST(broken([&](auto& c) { c["tcp"]["per_ip"][0] = bad; }) == "egress policy: invalid destination \"" + std::string(bad) + "\"");
    BOOST_TEST(broken([](auto& c) { c["tcp"]["per_net"] = {"1.2.3.4 *"}; }) == "egress policy: invalid network \"1.2.3.4\"");
    BOOST_TEST(broken([](auto& c) { c["bind"] = {{90, 80}}; }) == "egress policy: invalid bind range [90,80]");
    BOOST_TEST(broken([](auto& c) { c.erase("udp"); }).starts_with("egress policy: [json.exception."));
    BOOST_TEST(error_of([] { deserialize_policy("{"); }).starts_with("egress policy: [json.exception.parse_error"));
    BOOST_TEST(error_of([] { deserialize_policy("[]"); }) == "egress policy: not a JSON object");
}

BOOST_AUTO_TEST_SUITE_END()

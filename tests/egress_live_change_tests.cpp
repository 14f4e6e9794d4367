// Live changes of an allow list (egress/live_change.hpp) and the rule text they are kept
// in: what a change adds and removes, what it refuses, and that names keep their
// addresses. No DNS: names go through a fake resolver that counts its lookups.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "runtime/egress/live_change.hpp"
#include "runtime/egress/policy.hpp"
#include "runtime/util/error.hpp"

namespace egress_live_change_tests {
using namespace sandlock::egress;

IpAddr ip(const char* text) { return *IpAddr::parse(text); }

class CountingResolver final : public Resolver {
public:
    std::map<std::string, std::vector<IpAddr>> names;
    std::map<std::string, int> lookups;
    std::vector<IpAddr> lookup(const std::string& host) override {
        ++lookups[host];
        const auto it = names.find(host);
        if (it == names.end()) throw sandlock::Error("Name or service not known");
        return it->second;
    }
};

ResolvedPolicy allow_list(const std::string& rules, CountingResolver& dns,
                          std::optional<std::string> ceiling = std::nullopt) {
    Policy p = parse_policy({{"io.sandlock.network.allow", rules}});
    if (ceiling) p.ceiling = parse_rule_list(*ceiling);
    return resolve(p, dns);
}

ResolvedPolicy change(const ResolvedPolicy& current, std::vector<std::string> allow, std::vector<std::string> revoke,
                      CountingResolver& dns) {
    return apply_change(current, parse_change(allow, revoke), dns);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const sandlock::Error& e) {
        return e.what();
    }
    BOOST_FAIL("expected an error");
    return {};
}

std::vector<std::string> texts(const ResolvedPolicy& p) { return p.allow_rules.texts(); }

}  // namespace egress_live_change_tests

BOOST_AUTO_TEST_SUITE(egress_live_change)
using namespace egress_live_change_tests;
using egress_live_change_tests::ip;  // not <netinet/ip.h>'s struct ip

BOOST_AUTO_TEST_CASE(rule_text_reads_back_to_the_same_rule) {
    for (const char* text : {"10.0.0.1:443", "api.github.com:443,80", ":80", "*:*", "udp://1.1.1.1:53",
                             "udp://[fd00::1]:53", "[2606:4700::1111]:443", "10.0.0.0/8:5432", "icmp://*",
                             "icmp://10.0.0.1", "icmp://[fd00::/8]", "example.com:*"}) {
        const Rule rule = parse_rule(text);
        BOOST_TEST((parse_rule(to_string(rule)) == rule), text);
    }
    BOOST_TEST(to_string(parse_rule("tcp://*:443")) == "*:443");
    BOOST_TEST(to_string(parse_rule("udp://[fd00::1]:53")) == "udp://[fd00::1]:53");
    BOOST_TEST(same_rule(parse_rule("Example.COM:443,80"), parse_rule("example.com:80,443")));
    BOOST_TEST(!same_rule(parse_rule("example.com:443"), parse_rule("udp://example.com:443")));
    BOOST_TEST(!same_rule(parse_rule("example.com:443"), parse_rule("example.com:*")));
}

BOOST_AUTO_TEST_CASE(allow_adds_and_revoke_removes_what_the_policy_judges) {
    CountingResolver dns;
    const ResolvedPolicy start = allow_list("10.0.0.1:443", dns);
    const ResolvedPolicy wider = change(start, {"10.0.0.2:80", "udp://10.0.0.53:53"}, {}, dns);
    BOOST_TEST(texts(wider) == (std::vector<std::string>{"10.0.0.1:443", "10.0.0.2:80", "udp://10.0.0.53:53"}),
               boost::test_tools::per_element());
    BOOST_TEST(wider.check(Protocol::Tcp, ip("10.0.0.2"), 80).allowed());
    BOOST_TEST(!wider.check(Protocol::Tcp, ip("10.0.0.2"), 443).allowed());
    BOOST_TEST(wider.check(Protocol::Udp, ip("10.0.0.53"), 53).allowed());
    BOOST_TEST(wider.check(Protocol::Tcp, ip("10.0.0.1"), 443).allowed());
    // revoking: ports in another order name the same rule
    const ResolvedPolicy narrower = change(wider, {}, {"10.0.0.1:443"}, dns);
    BOOST_TEST(!narrower.check(Protocol::Tcp, ip("10.0.0.1"), 443).allowed());
    BOOST_TEST(narrower.check(Protocol::Tcp, ip("10.0.0.2"), 80).allowed());
    // revoking everything leaves an allow list that allows nothing
    const ResolvedPolicy none = change(narrower, {}, {"10.0.0.2:80", "udp://10.0.0.53:53"}, dns);
    BOOST_TEST((none.mode == Mode::Allow));
    BOOST_TEST(!none.check(Protocol::Tcp, ip("10.0.0.2"), 80).allowed());
    // the rest of the policy is kept
    BOOST_TEST((none.loopback == start.loopback));
    BOOST_TEST((none.audit == start.audit));
    // a rule allowed twice is there once; an unchanged policy compares equal
    BOOST_TEST((change(start, {"10.0.0.1:443"}, {}, dns) == start));
}

BOOST_AUTO_TEST_CASE(names_keep_their_addresses_and_only_new_names_are_looked_up) {
    CountingResolver dns;
    dns.names["a.example"] = {ip("10.0.0.1")};
    dns.names["b.example"] = {ip("10.0.0.2"), ip("fd00::2")};
    const ResolvedPolicy start = allow_list("a.example:443", dns);
    // a.example moves in DNS; a change must not move it (that is the refresh's job)
    dns.names["a.example"] = {ip("10.9.9.9")};
    const ResolvedPolicy next = change(start, {"b.example:443"}, {}, dns);
    BOOST_TEST(dns.lookups["a.example"] == 1);
    BOOST_TEST(dns.lookups["b.example"] == 1);
    BOOST_TEST(next.check(Protocol::Tcp, ip("10.0.0.1"), 443).allowed());
    BOOST_TEST(!next.check(Protocol::Tcp, ip("10.9.9.9"), 443).allowed());
    BOOST_TEST(next.check(Protocol::Tcp, ip("fd00::2"), 443).allowed());
    BOOST_REQUIRE(next.hosts.size() == 2u);
    BOOST_TEST(next.hosts[1].name == "b.example");
    // revoked, a name leaves the hosts list too
    const ResolvedPolicy back = change(next, {}, {"a.example:443"}, dns);
    BOOST_REQUIRE(back.hosts.size() == 1u);
    BOOST_TEST(back.hosts[0].name == "b.example");
    BOOST_TEST(error_of([&] { change(start, {"nope.example:443"}, {}, dns); }) ==
               "--allow: cannot resolve host \"nope.example\": Name or service not known");
}

BOOST_AUTO_TEST_CASE(the_ceiling_recorded_at_create_bounds_every_change) {
    CountingResolver dns;
    dns.names["pypi.org"] = {ip("151.101.0.223")};
    const ResolvedPolicy start = allow_list("10.0.0.1:443", dns, "*:443;10.0.0.0/8:80;udp://10.0.0.53:53");
    BOOST_TEST(change(start, {"pypi.org:443", "10.1.2.3:80", "udp://10.0.0.53:53"}, {}, dns).allow_rules.size() == 4u);
    BOOST_TEST(error_of([&] { change(start, {"10.0.0.2:443", "pypi.org:80"}, {}, dns); }) ==
               "--allow: rule \"pypi.org:80\" is outside the operator's ceiling");
    BOOST_TEST(error_of([&] { change(start, {"udp://10.0.0.54:53"}, {}, dns); }) ==
               "--allow: rule \"udp://10.0.0.54:53\" is outside the operator's ceiling");
    BOOST_TEST(error_of([&] { change(start, {"*:*"}, {}, dns); }) == "--allow: rule \"*:*\" is outside the operator's ceiling");
    // the refused name was never looked up
    BOOST_TEST(dns.lookups.count("pypi.org") == 1u);
    // and the ceiling survives the change, for the next one
    BOOST_TEST((change(start, {"10.0.0.2:443"}, {}, dns).ceiling == start.ceiling));
}

BOOST_AUTO_TEST_CASE(what_cannot_change_says_so_in_one_line) {
    CountingResolver dns;
    const ResolvedPolicy start = allow_list("10.0.0.1:443", dns);
    BOOST_TEST(error_of([&] { change(start, {}, {"10.0.0.9:443"}, dns); }) ==
               "--revoke: rule \"10.0.0.9:443\" is not in the policy (`sandlock-runc egress ID` lists its rules)");
    BOOST_TEST(error_of([&] { parse_change({"10.0.0.1:0"}, {}); }) == "--allow: rule \"10.0.0.1:0\": port 0 is not valid");
    BOOST_TEST(error_of([&] { parse_change({}, {"nope"}); }).rfind("--revoke: rule \"nope\": ", 0) == 0);
    const ResolvedPolicy deny = resolve(parse_policy({{"io.sandlock.network.deny", "private"}}), dns);
    BOOST_TEST(error_of([&] { change(deny, {"10.0.0.1:443"}, {}, dns); }) ==
               "this container's policy is a deny list (io.sandlock.network.deny): only an allow list can change live");
    const ResolvedPolicy open = resolve(parse_policy({{"io.sandlock.network.loopback", "deny"}}), dns);
    BOOST_TEST(error_of([&] { change(open, {"10.0.0.1:443"}, {}, dns); }).find("no allow list") != std::string::npos);
    // a policy written before the rules were kept with it
    ResolvedPolicy old = start;
    old.allow_rules.clear();
    BOOST_TEST(error_of([&] { change(old, {"10.0.0.2:443"}, {}, dns); }).find("older sandlock-runc") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(rules_and_ceiling_survive_egress_json) {
    CountingResolver dns;
    dns.names["a.example"] = {ip("10.0.0.1")};
    const ResolvedPolicy p = allow_list("a.example:443,80;udp://[fd00::1]:53;icmp://*", dns, "*:*;udp://*:53;icmp://*");
    const ResolvedPolicy back = deserialize_policy(serialize(p));
    BOOST_TEST((back == p));
    BOOST_TEST(texts(back) == (std::vector<std::string>{"a.example:443,80", "udp://[fd00::1]:53", "icmp://*"}),
               boost::test_tools::per_element());
    // version 2 kept the rules as a list of texts: still read, each text checked
    nlohmann::json j = nlohmann::json::parse(serialize(p));
    auto v2 = j;
    v2["version"] = 2;
    v2["allow_rules"] = {"a.example:443,80", "udp://[fd00::1]:53", "icmp://*"};
    BOOST_TEST((deserialize_policy(v2.dump()) == p));
    v2["allow_rules"] = {"a.example:443,80", "udp://[fd00::1]:0"};
    BOOST_TEST(error_of([&] { deserialize_policy(v2.dump()); }).starts_with("egress policy: invalid rule: "));
    // the current form is parsed when a change needs the rules
    auto corrupt = j;
    corrupt["allow_rules"] = "a.example:443,80;udp://[fd00::1]:0";
    const ResolvedPolicy kept = deserialize_policy(corrupt.dump());
    BOOST_TEST(kept.allow_rules.size() == 2u);
    BOOST_TEST(error_of([&] { change(kept, {"10.0.0.9:443"}, {}, dns); }).find("port 0") != std::string::npos);
    // a policy from before live changes reads without them
    j.erase("allow_rules");
    j.erase("ceiling");
    const ResolvedPolicy old = deserialize_policy(j.dump());
    BOOST_TEST(old.allow_rules.empty());
    BOOST_TEST(!old.ceiling.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

#include "runtime/egress/learn.hpp"

BOOST_AUTO_TEST_SUITE(egress_learning)
using namespace egress_live_change_tests;
using egress_live_change_tests::ip;  // not <netinet/ip.h>'s struct ip

BOOST_AUTO_TEST_CASE(the_suggestion_merges_ports_and_names_addresses_from_etc_hosts) {
    std::set<Learned> seen = {
        {Protocol::Tcp, ip("10.0.0.1"), 443},  {Protocol::Tcp, ip("10.0.0.1"), 80},
        {Protocol::Tcp, ip("10.0.0.2"), 443},  // a second address of the same name
        {Protocol::Tcp, ip("10.0.0.9"), 5432}, {Protocol::Udp, ip("10.0.0.53"), 53},
        {Protocol::Icmp, ip("10.0.0.1"), 0},   {Protocol::Tcp, ip("fd00::9"), 22},
        {Protocol::Tcp, ip("127.0.0.1"), 8080},  // loopback: allowed anyway
        {Protocol::Udp, ip("::1"), 53},
    };
    const auto names = names_in_hosts(
        "127.0.0.1 localhost\n# 10.0.0.9 commented.example\n10.0.0.1\tapi.example api\n10.0.0.2 api.example\n"
        "10.0.0.1 other.example\n10.0.0.53 dns.internal # resolver\nnot-an-address x\n");
    BOOST_TEST(names.at(ip("10.0.0.1")) == "api.example");  // the first line for an address
    BOOST_TEST(names.count(ip("10.0.0.9")) == 0u);
    BOOST_TEST(suggest_allow(seen, names) ==
               "10.0.0.9:5432;[fd00::9]:22;api.example:80,443;udp://dns.internal:53;icmp://api.example");
    // every rule of it parses, and admits exactly what was seen
    Policy p = parse_policy({{"io.sandlock.network.allow", suggest_allow(seen, names)}});
    BOOST_TEST(p.allow.size() == 5u);
    BOOST_TEST(suggest_allow({{Protocol::Tcp, ip("127.0.0.1"), 80}}, {}) == "");
}

BOOST_AUTO_TEST_CASE(the_learned_set_is_bounded_and_survives_json) {
    LearnedSet set;
    BOOST_TEST(set.add({Protocol::Tcp, ip("10.0.0.1"), 443}));
    BOOST_TEST(!set.add({Protocol::Tcp, ip("10.0.0.1"), 443}));
    for (unsigned i = 1; set.entries().size() < LearnedSet::kMaxEntries; ++i)
        set.add({Protocol::Udp, ip("10.1.0.1"), static_cast<std::uint16_t>(i)});
    BOOST_TEST(!set.add({Protocol::Tcp, ip("10.9.9.9"), 1}));
    BOOST_TEST(set.dropped() == 1u);
    const LearnedSet back = LearnedSet::from_json(set.to_json());
    BOOST_TEST(back.entries().size() == LearnedSet::kMaxEntries);
    BOOST_TEST(back.dropped() == 1u);
    BOOST_CHECK_THROW(LearnedSet::from_json(nlohmann::json::parse(R"({"destinations":[["sctp","10.0.0.1",1]]})")),
                      sandlock::Error);
}

BOOST_AUTO_TEST_CASE(learning_mode_allows_and_records_everything_and_stands_alone) {
    const Policy p = parse_policy({{"io.sandlock.network.learn", "true"}, {"io.sandlock.audit", "deny"}});
    BOOST_TEST(p.learn);
    BOOST_TEST(p.active());
    BOOST_TEST((p.mode == Mode::Open));
    BOOST_TEST((p.audit == Audit::All));
    CountingResolver dns;
    const ResolvedPolicy r = resolve(p, dns);
    BOOST_TEST(r.learn);
    BOOST_TEST(r.check(Protocol::Tcp, ip("203.0.113.7"), 25).allowed());
    BOOST_TEST(deserialize_policy(serialize(r)).learn);
    BOOST_TEST(!parse_policy({{"io.sandlock.network.learn", "false"}}).learn);
    BOOST_TEST(error_of([] { parse_policy({{"io.sandlock.network.learn", "yes"}}); }) ==
               "io.sandlock.network.learn: invalid value \"yes\" (expected true, false)");
    BOOST_TEST(error_of([] { parse_policy({{"io.sandlock.network.learn", "true"}, {"io.sandlock.network.deny", "private"}}); })
                   .find("cannot be combined with") != std::string::npos);
    // a live change needs an allow list: learning has none
    BOOST_TEST(error_of([&] { change(r, {"10.0.0.1:443"}, {}, dns); }).find("no allow list") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// Names that follow DNS: the shim's schedule (shim/name_refresh.hpp) — when a name is due,
// which addresses it admits through a change and its grace — and the DNS answer parser
// (egress/dns.hpp) on hand-made messages. No DNS server: the clock is the test's.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <arpa/nameser.h>

#include <nlohmann/json.hpp>

#include "runtime/egress/dns.hpp"
#include "runtime/egress/live_change.hpp"
#include "runtime/shim/name_refresh.hpp"
#include "tests/printers.hpp"

namespace name_refresh {
using namespace sandlock;
using egress::DnsAnswer;
using egress::IpAddr;
using shim::NameSchedule;
using std::chrono::seconds;

IpAddr ip(const char* text) { return *IpAddr::parse(text); }

const egress::RefreshSettings kSettings{10'000, 60'000, 30'000};  // 10 s, 1 min, grace 30 s
const NameSchedule::Clock::time_point t0{};

std::vector<IpAddr> addresses_of(const NameSchedule& s, const std::string& name) {
    for (const auto& h : s.hosts())
        if (h.name == name) return h.addresses;
    return {};
}

// A DNS response: header, the question, then one answer record per address.
std::vector<unsigned char> message(const std::vector<std::pair<IpAddr, std::uint32_t>>& records, int type) {
    std::vector<unsigned char> m = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, static_cast<unsigned char>(records.size()), 0, 0, 0, 0};
    const unsigned char qname[] = {1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
    m.insert(m.end(), std::begin(qname), std::end(qname));
    m.insert(m.end(), {0, static_cast<unsigned char>(type), 0, 1});
    for (const auto& [addr, ttl] : records) {
        m.insert(m.end(), {0xc0, 12, 0, static_cast<unsigned char>(type), 0, 1});
        for (int shift : {24, 16, 8, 0}) m.push_back(static_cast<unsigned char>(ttl >> shift));
        const int len = addr.is_v4() ? 4 : 16;
        m.insert(m.end(), {0, static_cast<unsigned char>(len)});
        m.insert(m.end(), addr.bytes.begin(), addr.bytes.begin() + len);
    }
    return m;
}

}  // namespace name_refresh

BOOST_AUTO_TEST_SUITE(name_refresh)

BOOST_AUTO_TEST_CASE(a_name_is_due_after_its_ttl_within_the_bounds) {
    NameSchedule s(kSettings);
    s.track({{"a.example", {ip("10.0.0.1")}}}, t0);
    // resolved at create without a TTL: due after min_interval
    BOOST_TEST(s.due(t0 + seconds(9)).empty());
    BOOST_TEST(s.due(t0 + seconds(10)).size() == 1u);
    BOOST_TEST((s.next_event() == t0 + seconds(10)));
    s.answer("a.example", DnsAnswer{{ip("10.0.0.1")}, 30}, t0 + seconds(10));
    BOOST_TEST((s.next_event() == t0 + seconds(40)));  // the TTL
    s.answer("a.example", DnsAnswer{{ip("10.0.0.1")}, 1}, t0 + seconds(40));
    BOOST_TEST((s.next_event() == t0 + seconds(50)));  // never sooner than min_interval
    s.answer("a.example", DnsAnswer{{ip("10.0.0.1")}, 86400}, t0 + seconds(50));
    BOOST_TEST((s.next_event() == t0 + seconds(110)));  // never later than max_interval
}

BOOST_AUTO_TEST_CASE(a_new_address_is_a_change_and_an_old_one_retires_after_the_grace) {
    NameSchedule s(kSettings);
    s.track({{"a.example", {ip("10.0.0.1")}}}, t0);
    // the same answer: nothing changes
    BOOST_TEST(!s.answer("a.example", DnsAnswer{{ip("10.0.0.1")}, 10}, t0 + seconds(10)));
    // the name moves: the new address at once, the old one for the grace
    BOOST_TEST(s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 10}, t0 + seconds(20)));
    BOOST_TEST(addresses_of(s, "a.example") == (std::vector<IpAddr>{ip("10.0.0.2"), ip("10.0.0.1")}),
               boost::test_tools::per_element());
    BOOST_TEST(!s.expire(t0 + seconds(49)));
    BOOST_TEST((s.next_event() == t0 + seconds(30)));  // the next lookup comes first
    BOOST_TEST(!s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 10}, t0 + seconds(30)));
    BOOST_TEST((s.next_event() == t0 + seconds(40)));
    s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 60}, t0 + seconds(40));
    BOOST_TEST((s.next_event() == t0 + seconds(50)));  // the grace's end
    BOOST_TEST(s.expire(t0 + seconds(50)));
    BOOST_TEST(addresses_of(s, "a.example") == (std::vector<IpAddr>{ip("10.0.0.2")}), boost::test_tools::per_element());
    // an address back within its grace was admitted all along: no change
    BOOST_TEST(s.answer("a.example", DnsAnswer{{ip("10.0.0.3")}, 10}, t0 + seconds(100)));
    BOOST_TEST(!s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 10}, t0 + seconds(110)));
}

BOOST_AUTO_TEST_CASE(a_failed_or_empty_lookup_keeps_the_addresses_and_retries_soon) {
    NameSchedule s(kSettings);
    s.track({{"a.example", {ip("10.0.0.1")}}}, t0);
    s.failed("a.example", t0 + seconds(10));
    BOOST_TEST(addresses_of(s, "a.example") == (std::vector<IpAddr>{ip("10.0.0.1")}), boost::test_tools::per_element());
    BOOST_TEST((s.next_event() == t0 + seconds(20)));
    BOOST_TEST(!s.answer("a.example", DnsAnswer{{}, 300}, t0 + seconds(20)));
    BOOST_TEST(addresses_of(s, "a.example") == (std::vector<IpAddr>{ip("10.0.0.1")}), boost::test_tools::per_element());
    BOOST_TEST((s.next_event() == t0 + seconds(30)));
}

BOOST_AUTO_TEST_CASE(live_changes_add_and_drop_names) {
    NameSchedule s(kSettings);
    s.track({{"a.example", {ip("10.0.0.1")}}}, t0);
    s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 10}, t0 + seconds(10));
    // a live --allow adds b: a keeps its state (its retiring address too), b is new
    s.track({{"a.example", {ip("10.0.0.2"), ip("10.0.0.1")}}, {"b.example", {ip("10.0.1.1")}}}, t0 + seconds(12));
    BOOST_TEST(addresses_of(s, "a.example").size() == 2u);
    BOOST_TEST(s.due(t0 + seconds(21)) == (std::vector<std::string>{"a.example"}), boost::test_tools::per_element());
    BOOST_TEST(s.due(t0 + seconds(22)).size() == 2u);
    // a live --revoke drops a
    s.track({{"b.example", {ip("10.0.1.1")}}}, t0 + seconds(13));
    BOOST_TEST(s.hosts().size() == 1u);
    BOOST_TEST(!s.answer("a.example", DnsAnswer{{ip("10.9.9.9")}, 10}, t0 + seconds(14)));
    const auto status = s.status(t0 + seconds(14));
    BOOST_TEST(status.at(0).at("name") == "b.example");
    BOOST_TEST(status.at(0).at("refresh_in_s") == 8);
}

BOOST_AUTO_TEST_CASE(the_policy_follows_the_schedule) {
    egress::Policy p = egress::parse_policy({{"io.sandlock.network.allow", "a.example:443"}});
    p.refresh = kSettings;
    struct Fixed final : egress::Resolver {
        std::vector<IpAddr> lookup(const std::string&) override { return {ip("10.0.0.1")}; }
    } dns;
    const auto start = egress::resolve(p, dns);
    NameSchedule s(kSettings);
    s.track(start.hosts, t0);
    s.answer("a.example", DnsAnswer{{ip("10.0.0.2")}, 10}, t0 + seconds(10));
    const auto moved = egress::with_names(start, s.hosts());
    BOOST_TEST(moved.check(egress::Protocol::Tcp, ip("10.0.0.2"), 443).allowed());
    BOOST_TEST(moved.check(egress::Protocol::Tcp, ip("10.0.0.1"), 443).allowed());  // in its grace
    s.expire(t0 + seconds(40));
    const auto settled = egress::with_names(moved, s.hosts());
    BOOST_TEST(!settled.check(egress::Protocol::Tcp, ip("10.0.0.1"), 443).allowed());
    BOOST_TEST(settled.check(egress::Protocol::Tcp, ip("10.0.0.2"), 443).allowed());
    BOOST_TEST((settled.refresh == start.refresh));
    BOOST_TEST(settled.allow_rules.size() == 1u);
}

BOOST_AUTO_TEST_CASE(dns_answers_give_addresses_and_the_smallest_ttl) {
    const auto a = message({{ip("10.0.0.1"), 300}, {ip("10.0.0.2"), 60}, {ip("10.0.0.1"), 300}}, ns_t_a);
    const DnsAnswer v4 = egress::parse_answer(a.data(), static_cast<int>(a.size()), ns_t_a);
    BOOST_TEST(v4.addresses == (std::vector<IpAddr>{ip("10.0.0.1"), ip("10.0.0.2")}), boost::test_tools::per_element());
    BOOST_TEST(v4.ttl_s == 60u);
    const auto aaaa = message({{ip("fd00::1"), 120}}, ns_t_aaaa);
    const DnsAnswer v6 = egress::parse_answer(aaaa.data(), static_cast<int>(aaaa.size()), ns_t_aaaa);
    BOOST_TEST(v6.addresses == (std::vector<IpAddr>{ip("fd00::1")}), boost::test_tools::per_element());
    BOOST_TEST(v6.ttl_s == 120u);
    // records of another type are skipped; a truncated message is an error
    BOOST_TEST(egress::parse_answer(a.data(), static_cast<int>(a.size()), ns_t_aaaa).addresses.empty());
    BOOST_CHECK_THROW(egress::parse_answer(a.data(), 20, ns_t_a), sandlock::Error);
}

BOOST_AUTO_TEST_SUITE_END()

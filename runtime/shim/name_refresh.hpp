// Names that follow DNS (issue 12, `resolve: {refresh: true}`): when each allowed name is
// due again and which addresses it admits meanwhile. The shim's refresh thread
// (process.cpp) asks DNS for the names that are due (egress/dns.hpp), hands the answers
// here, and when the addresses changed applies with_names(policy, hosts()) as a live
// change (the kernel's maps, its own verdicts, /etc/hosts).
//
// A name is due again after its answer's TTL, never sooner than min_interval nor later
// than max_interval. An address that left the answer stays admitted for `grace` more
// (connections being made to a moving name still work), then goes. A failed lookup, or
// an answer without addresses, keeps the addresses the name had and retries after
// min_interval: a DNS outage does not cut a running workload off, nor open anything.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/egress/dns.hpp"
#include "runtime/egress/policy.hpp"

namespace sandlock::shim {

class NameSchedule {
public:
    using Clock = std::chrono::steady_clock;

    explicit NameSchedule(egress::RefreshSettings settings) : settings_(settings) {}

    // The policy's names now (at start, after a live change): a new name is due after
    // min_interval with the addresses it was resolved to; a name gone is forgotten.
    void track(const std::vector<egress::HostEntry>& hosts, Clock::time_point now);
    // Names due at `now`, sorted.
    std::vector<std::string> due(Clock::time_point now) const;
    // An answer for `name`; true when the addresses it admits changed.
    bool answer(const std::string& name, const egress::DnsAnswer& answer, Clock::time_point now);
    // A lookup that failed: the name keeps what it has and is due after min_interval.
    void failed(const std::string& name, Clock::time_point now);
    // Drops the addresses whose grace ended; true when any was.
    bool expire(Clock::time_point now);
    // Each name with the addresses it admits: its answer's, then those still in grace.
    std::vector<egress::HostEntry> hosts() const;
    // When something is due next (a name, or the end of a grace); max() when nothing is.
    Clock::time_point next_event() const;
    // For `egress ID`: per name its addresses, when it is due and what retires when.
    nlohmann::json status(Clock::time_point now) const;

private:
    struct Retiring {
        egress::IpAddr address;
        Clock::time_point until;
    };
    struct Name {
        std::vector<egress::IpAddr> current;
        std::vector<Retiring> retiring;
        Clock::time_point due;
        std::uint32_t last_ttl_s = 0;
    };
    Clock::duration interval_for(std::uint32_t ttl_s) const;

    egress::RefreshSettings settings_;
    std::map<std::string, Name> names_;
};

}  // namespace sandlock::shim

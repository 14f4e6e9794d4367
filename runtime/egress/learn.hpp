// Learning mode (io.sandlock.network.learn: "true", issue 12): the container runs with every
// destination allowed and every decision recorded; the shim keeps the distinct
// destinations it saw (LearnedSet, <state dir>/learned.json), and `egress ID --suggest`
// turns them into the smallest allow list that would have let exactly that through.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/egress/rules.hpp"

namespace sandlock::egress {

// One destination the workload reached: protocol, address, port (0 for ICMP).
struct Learned {
    Protocol protocol = Protocol::Tcp;
    IpAddr address;
    std::uint16_t port = 0;
    auto operator<=>(const Learned&) const = default;
};

// The distinct destinations, bounded: a workload that scans the internet must not grow
// the shim (which runs outside its cgroup) without end. Past the cap, destinations are
// counted, not kept, and the suggestion says it is incomplete.
class LearnedSet {
public:
    static constexpr std::size_t kMaxEntries = 4096;

    // True when `d` is new (and kept).
    bool add(const Learned& d);
    const std::set<Learned>& entries() const { return entries_; }
    std::uint64_t dropped() const { return dropped_; }

    nlohmann::json to_json() const;
    // Throws sandlock::Error for a malformed document.
    static LearnedSet from_json(const nlohmann::json& j);

private:
    std::set<Learned> entries_;
    std::uint64_t dropped_ = 0;
};

// Each address of an /etc/hosts text with the first name written for it.
std::map<IpAddr, std::string> names_in_hosts(std::string_view hosts);

// The allow list (an io.sandlock.network.allow value) that admits exactly the destinations
// of `seen`: one rule per protocol and host — the name /etc/hosts gives the address, else
// the address (IPv6 in brackets) — with its ports merged, TCP then UDP then ICMP, each
// sorted. Loopback destinations are left out (the default loopback=allow admits them).
// "" when nothing but loopback was seen.
std::string suggest_allow(const std::set<Learned>& seen, const std::map<IpAddr, std::string>& names);

}  // namespace sandlock::egress

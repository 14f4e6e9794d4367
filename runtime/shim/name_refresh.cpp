#include "runtime/shim/name_refresh.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace sandlock::shim {

namespace {

using std::chrono::milliseconds;

bool holds(const std::vector<egress::IpAddr>& v, const egress::IpAddr& ip) {
    return std::find(v.begin(), v.end(), ip) != v.end();
}

}  // namespace

NameSchedule::Clock::duration NameSchedule::interval_for(std::uint32_t ttl_s) const {
    const std::uint64_t ms = std::clamp<std::uint64_t>(std::uint64_t{ttl_s} * 1000, settings_.min_interval_ms,
                                                       settings_.max_interval_ms);
    return milliseconds(ms);
}

void NameSchedule::track(const std::vector<egress::HostEntry>& hosts, Clock::time_point now) {
    std::map<std::string, Name> next;
    for (const auto& h : hosts) {
        auto it = names_.find(h.name);
        if (it != names_.end()) {
            next.emplace(h.name, std::move(it->second));
            continue;
        }
        next.emplace(h.name, Name{h.addresses, {}, now + milliseconds(settings_.min_interval_ms), 0});
    }
    names_ = std::move(next);
}

std::vector<std::string> NameSchedule::due(Clock::time_point now) const {
    std::vector<std::string> out;
    for (const auto& [name, n] : names_)
        if (n.due <= now) out.push_back(name);
    return out;
}

bool NameSchedule::answer(const std::string& name, const egress::DnsAnswer& answer, Clock::time_point now) {
    const auto it = names_.find(name);
    if (it == names_.end()) return false;
    if (answer.addresses.empty()) {
        failed(name, now);
        return false;
    }
    Name& n = it->second;
    bool changed = false;
    const auto until = now + milliseconds(settings_.grace_ms);
    for (const auto& old : n.current) {
        if (holds(answer.addresses, old)) continue;
        n.retiring.push_back({old, until});
        // An address that left and still holds for the grace admits the same: no change yet.
    }
    for (const auto& ip : answer.addresses) {
        // back in the answer: no longer retiring (it was admitted all along)
        const bool was_retiring = std::erase_if(n.retiring, [&](const Retiring& r) { return r.address == ip; }) > 0;
        if (!holds(n.current, ip) && !was_retiring) changed = true;
    }
    n.current = answer.addresses;
    n.last_ttl_s = answer.ttl_s;
    n.due = now + interval_for(answer.ttl_s);
    return changed;
}

void NameSchedule::failed(const std::string& name, Clock::time_point now) {
    const auto it = names_.find(name);
    if (it != names_.end()) it->second.due = now + milliseconds(settings_.min_interval_ms);
}

bool NameSchedule::expire(Clock::time_point now) {
    bool any = false;
    for (auto& [name, n] : names_)
        any |= std::erase_if(n.retiring, [&](const Retiring& r) { return r.until <= now; }) > 0;
    return any;
}

std::vector<egress::HostEntry> NameSchedule::hosts() const {
    std::vector<egress::HostEntry> out;
    for (const auto& [name, n] : names_) {
        egress::HostEntry h{name, n.current};
        for (const auto& r : n.retiring)
            if (!holds(h.addresses, r.address)) h.addresses.push_back(r.address);
        out.push_back(std::move(h));
    }
    return out;
}

NameSchedule::Clock::time_point NameSchedule::next_event() const {
    auto next = Clock::time_point::max();
    for (const auto& [name, n] : names_) {
        next = std::min(next, n.due);
        for (const auto& r : n.retiring) next = std::min(next, r.until);
    }
    return next;
}

nlohmann::json NameSchedule::status(Clock::time_point now) const {
    auto seconds_from_now = [&](Clock::time_point t) {
        return std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(t - now).count());
    };
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, n] : names_) {
        nlohmann::json addrs = nlohmann::json::array(), retiring = nlohmann::json::array();
        for (const auto& ip : n.current) addrs.push_back(ip.to_string());
        for (const auto& r : n.retiring)
            retiring.push_back({{"address", r.address.to_string()}, {"expires_in_s", seconds_from_now(r.until)}});
        out.push_back({{"name", name},
                       {"addresses", addrs},
                       {"ttl_s", n.last_ttl_s},
                       {"refresh_in_s", seconds_from_now(n.due)},
                       {"retiring", retiring}});
    }
    return out;
}

}  // namespace sandlock::shim

#include "runtime/egress/learn.hpp"

#include <nlohmann/json.hpp>

#include "runtime/egress/policy.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::egress {

bool LearnedSet::add(const Learned& d) {
    if (entries_.count(d)) return false;
    if (entries_.size() >= kMaxEntries) {
        ++dropped_;
        return false;
    }
    entries_.insert(d);
    return true;
}

nlohmann::json LearnedSet::to_json() const {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : entries_) list.push_back({to_string(d.protocol), d.address.to_string(), d.port});
    return {{"destinations", list}, {"dropped", dropped_}};
}

LearnedSet LearnedSet::from_json(const nlohmann::json& j) {
    LearnedSet out;
    try {
        for (const auto& e : j.at("destinations")) {
            const auto protocol = protocol_from_string(e.at(0).get<std::string>());
            const auto address = IpAddr::parse(e.at(1).get<std::string>());
            if (!protocol || !address) throw Error("learned destinations: invalid entry " + e.dump());
            out.entries_.insert(Learned{*protocol, *address, e.at(2).get<std::uint16_t>()});
        }
        out.dropped_ = j.value("dropped", std::uint64_t{0});
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("learned destinations: ") + e.what());
    }
    return out;
}

std::map<IpAddr, std::string> names_in_hosts(std::string_view hosts) {
    std::map<IpAddr, std::string> out;
    std::size_t start = 0;
    while (start < hosts.size()) {
        std::size_t end = hosts.find('\n', start);
        if (end == std::string_view::npos) end = hosts.size();
        std::string_view line = hosts.substr(start, end - start);
        start = end + 1;
        if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        std::vector<std::string_view> fields;
        std::size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            const std::size_t f = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
            if (i > f) fields.push_back(line.substr(f, i - f));
        }
        if (fields.size() < 2) continue;
        const auto ip = IpAddr::parse(fields[0]);
        if (ip) out.emplace(normalize(*ip), std::string(fields[1]));  // the first line for an address wins
    }
    return out;
}

std::string suggest_allow(const std::set<Learned>& seen, const std::map<IpAddr, std::string>& names) {
    // (protocol, host) -> ports, in rule order
    std::map<std::pair<Protocol, std::string>, std::set<std::uint16_t>> rules;
    for (const auto& d : seen) {
        const IpAddr ip = normalize(d.address);
        if (reaches_loopback(ip)) continue;
        const auto name = names.find(ip);
        std::string host = name != names.end() ? name->second : ip.to_string();
        if (name == names.end() && !ip.is_v4()) host = "[" + host + "]";
        auto& ports = rules[{d.protocol, host}];
        if (d.protocol != Protocol::Icmp) ports.insert(d.port);
    }
    std::string out;
    for (const auto& [key, ports] : rules) {
        const auto& [protocol, host] = key;
        std::string rule = protocol == Protocol::Tcp ? "" : std::string(to_string(protocol)) + "://";
        rule += host;
        if (protocol != Protocol::Icmp) {
            rule += ':';
            bool first = true;
            for (const auto p : ports) {
                rule += (first ? "" : ",") + std::to_string(p);
                first = false;
            }
        }
        out += (out.empty() ? "" : ";") + rule;
    }
    return out;
}

}  // namespace sandlock::egress

#include "runtime/egress/live_change.hpp"

#include <algorithm>

#include "runtime/util/error.hpp"

namespace sandlock::egress {

namespace {

std::vector<Rule> parse_all(const std::vector<std::string>& texts, const std::string& flag) {
    std::vector<Rule> rules;
    for (const auto& text : texts) {
        try {
            rules.push_back(parse_rule(trim(text)));
        } catch (const RuleError& e) {
            throw Error(flag + ": rule " + in_quotes(e.rule().empty() ? text : e.rule()) + ": " + e.reason());
        }
    }
    return rules;
}

// The names the policy had keep their addresses; new ones were looked up beforehand.
class PinnedResolver final : public Resolver {
public:
    explicit PinnedResolver(std::vector<HostEntry> known) : known_(std::move(known)) {}
    std::vector<IpAddr> lookup(const std::string& host) override {
        for (const auto& h : known_)
            if (h.name == host) return h.addresses;
        throw Error("not looked up (internal error)");
    }

private:
    std::vector<HostEntry> known_;
};

bool knows(const std::vector<HostEntry>& hosts, const std::string& name) {
    return std::any_of(hosts.begin(), hosts.end(), [&](const HostEntry& h) { return h.name == name; });
}

void check_changeable(const ResolvedPolicy& current) {
    if (current.mode == Mode::Deny)
        throw Error("this container's policy is a deny list (io.sandlock.network.deny): only an allow list can change live");
    if (current.mode == Mode::Open)
        throw Error("this container's policy has no allow list (io.sandlock.network.allow): there is nothing to change live");
    const bool has_rules = !current.tcp.empty() || !current.udp.empty() || !current.icmp.empty();
    if (current.allow_rules.empty() && has_rules)
        throw Error("this container's policy was written by an older sandlock-runc, without its rules: it cannot change live");
}

// current's settings with these rules, names resolved to `names`.
ResolvedPolicy rebuilt(const ResolvedPolicy& current, std::vector<Rule> rules, std::vector<HostEntry> names) {
    Policy next;
    next.mode = Mode::Allow;
    next.allow = std::move(rules);
    if (current.bind) next.allow_bind = *current.bind;
    next.loopback = current.loopback;
    next.audit = current.audit;
    next.ceiling = current.ceiling;
    next.refresh = current.refresh;
    next.network_keys = true;
    PinnedResolver pinned(std::move(names));
    return resolve(std::move(next), pinned, current.loopback);
}

}  // namespace

PolicyChange parse_change(const std::vector<std::string>& allow, const std::vector<std::string>& revoke) {
    return PolicyChange{parse_all(allow, "--allow"), parse_all(revoke, "--revoke")};
}

ResolvedPolicy apply_change(const ResolvedPolicy& current, const PolicyChange& change, Resolver& resolver) {
    check_changeable(current);
    std::vector<Rule> rules = current.allow_rules.rules();
    for (const auto& gone : change.revoke) {
        const auto it = std::find_if(rules.begin(), rules.end(), [&](const Rule& r) { return same_rule(r, gone); });
        if (it == rules.end())
            throw Error("--revoke: rule " + in_quotes(to_string(gone)) +
                        " is not in the policy (`sandlock-runc egress ID` lists its rules)");
        rules.erase(it);
    }
    std::vector<HostEntry> names = current.hosts;
    for (const auto& added : change.allow) {
        if (current.ceiling && !inside_ceiling(added, *current.ceiling))
            throw Error("--allow: rule " + in_quotes(to_string(added)) + " is outside the operator's ceiling");
        if (std::any_of(rules.begin(), rules.end(), [&](const Rule& r) { return same_rule(r, added); })) continue;
        if (added.host && !added.address && !knows(names, *added.host)) {
            try {
                names.push_back(HostEntry{*added.host, resolver.lookup(*added.host)});
            } catch (const Error& e) {
                throw Error("--allow: cannot resolve host " + in_quotes(*added.host) + ": " + e.what());
            }
            if (names.back().addresses.empty())
                throw Error("--allow: cannot resolve host " + in_quotes(*added.host) + ": no addresses");
        }
        rules.push_back(added);
    }
    return rebuilt(current, std::move(rules), std::move(names));
}

ResolvedPolicy with_names(const ResolvedPolicy& current, const std::vector<HostEntry>& names) {
    check_changeable(current);
    std::vector<HostEntry> merged = current.hosts;
    for (auto& h : merged)
        for (const auto& n : names)
            if (n.name == h.name) h.addresses = n.addresses;
    return rebuilt(current, current.allow_rules.rules(), std::move(merged));
}

}  // namespace sandlock::egress

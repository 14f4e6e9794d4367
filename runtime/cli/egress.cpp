// `sandlock-runc egress ID`: the container's active egress rules (<state dir>/egress.json),
// the shim's allow/deny counters (its status over shim.sock) and the audit log's path.
#include <iostream>

#include "runtime/cli/cli.hpp"
#include "runtime/cli/table.hpp"
#include "runtime/container/container.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/egress/learn.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cli {
namespace {

using json = nlohmann::json;

std::string join_ports(const std::vector<std::uint16_t>& ports) {
    std::string out;
    for (const auto p : ports) out += (out.empty() ? "" : ",") + std::to_string(p);
    return out;
}

// How often the kernel's programs applied row i (the order of egress::rule_rows()), or
// "-" without kernel counters.
std::string hits(const json& kernel, std::size_t i) {
    if (!kernel.is_object() || !kernel.contains("rules") || i >= kernel.at("rules").size()) return "-";
    const json& r = kernel.at("rules").at(i);
    return std::to_string(r.value("allowed", std::uint64_t{0}) + r.value("denied", std::uint64_t{0}));
}

// One row per destination entry, in allow mode the allowed ones and in deny mode the
// denied ones: egress::rule_rows(), the kernel's counter slots.
void add_rule_rows(Table& t, const egress::ResolvedPolicy& policy, const json& kernel) {
    const std::string action = policy.mode == egress::Mode::Deny ? "deny" : "allow";
    const auto rows = egress::rule_rows(policy);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const egress::RuleRow& r = rows[i];
        const bool icmp = r.protocol == egress::Protocol::Icmp;
        t.add({action, egress::to_string(r.protocol), r.where ? r.where->to_string() : "*",
               icmp ? "-" : r.all_ports ? "*" : join_ports(r.ports), hits(kernel, i)});
    }
}

// The kernel's own tally: every datagram and connect its programs judged, also those
// that never reached the shim.
std::string kernel_text(const json& c) {
    if (!c.is_object() || !c.contains("kernel")) return "-";
    const json& k = c.at("kernel");
    if (k.contains("error")) return "unreadable (" + k.at("error").get<std::string>() + ")";
    const auto n = [&](const char* key) { return std::to_string(k.value(key, std::uint64_t{0})); };
    return n("allowed") + " allowed, " + n("denied") + " denied (refused sockets " + n("refused_sockets") +
           ", source-routed packets " + n("routed_packets") + ", lost audit events " + n("lost_events") + ")";
}

std::string bind_text(const json& bind) {
    if (bind.is_null()) return "unrestricted";
    std::string out;
    for (const auto& r : bind) {
        const int first = r.at(0).get<int>(), last = r.at(1).get<int>();
        out += (out.empty() ? "" : ",") + std::to_string(first) +
               (first == last ? "" : "-" + std::to_string(last));
    }
    return out.empty() ? "none" : out;
}

std::string shim_text(const json& shim) {
    if (!shim.value("running", false)) return "not running";
    const int listeners = shim.value("listeners", 0);
    return "running (pid " + std::to_string(shim.value("pid", 0)) + ", " + std::to_string(listeners) +
           (listeners == 1 ? " listener)" : " listeners)");
}

std::string enforcement_text(const json& e) {
    if (e == "kernel") return "kernel (cgroup BPF programs) and the shim";
    if (e == "supervisor") return "supervisor mode (the shim alone: no kernel programs)";
    return "-";
}

// The audit log's decisions, one row each (the log is JSON lines).
void print_decisions(const json& s) {
    if (!s.contains("audit_log") || s.at("audit_log").is_null()) return;
    std::string text;
    try {
        text = fs::read_file(s.at("audit_log").get<std::string>());
    } catch (const Error&) {
        return;  // no decision recorded yet
    }
    Table rows({"TIME", "PID", "SYSCALL", "PROTOCOL", "DESTINATION", "PORT", "VERDICT"});
    size_t start = 0, count = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        json d = json::parse(text.substr(start, end - start), nullptr, false);
        start = end + 1;
        if (d.is_discarded() || !d.is_object()) continue;
        rows.add({d.value("time", ""), std::to_string(d.value("pid", 0)), d.value("syscall", ""),
                  d.value("protocol", ""), d.value("destination", ""),
                  std::to_string(d.value("port", 0)), d.value("verdict", "")});
        ++count;
    }
    if (count) std::cout << "\n" << rows.render();
}

// The policy's names; with resolve.refresh also when each is looked up next and which
// addresses are in their grace ("10.0.0.1 (until 42s)").
void print_hosts(const json& hosts, const json& names) {
    const bool refresh = names.is_array();
    Table t = refresh ? Table({"HOST", "ADDRESSES", "TTL", "REFRESH IN"}) : Table({"HOST", "ADDRESSES"});
    for (const auto& h : hosts) {
        const std::string name = h.at("name").get<std::string>();
        const json* n = nullptr;
        if (refresh)
            for (const auto& candidate : names)
                if (candidate.value("name", "") == name) n = &candidate;
        std::string addrs;
        for (const auto& a : (n ? n->at("addresses") : h.at("addresses")))
            addrs += (addrs.empty() ? "" : ",") + a.get<std::string>();
        if (n)
            for (const auto& r : n->at("retiring"))
                addrs += (addrs.empty() ? "" : ",") + r.value("address", "") + " (until " +
                         std::to_string(r.value("expires_in_s", 0)) + "s)";
        if (!refresh) t.add({name, addrs});
        else if (!n) t.add({name, addrs, "-", "-"});
        else t.add({name, addrs, std::to_string(n->value("ttl_s", 0)) + "s", std::to_string(n->value("refresh_in_s", 0)) + "s"});
    }
    std::cout << "\n" << t.render();
}

void print_table(const json& s) {
    const json& policy = s.at("policy");
    if (policy.is_null()) {
        std::cout << "no egress policy\n";
        return;
    }
    Table head({"mode:", policy.at("mode").get<std::string>()});
    head.add({"enforced by:", enforcement_text(s.at("enforcement"))});
    head.add({"loopback:", policy.at("loopback").get<std::string>()});
    head.add({"bind:", bind_text(policy.at("bind"))});
    head.add({"audit:", s.at("audit").get<std::string>()});
    head.add({"audit log:", s.at("audit_log").is_null() ? "-" : s.at("audit_log").get<std::string>()});
    head.add({"shim:", shim_text(s.at("shim"))});
    const json& c = s.at("counters");
    for (const char* k : {"allowed", "denied", "continued", "errors", "busy"})
        head.add({std::string(k) + ":", c.is_object() && c.contains(k) ? std::to_string(c[k].get<uint64_t>()) : "-"});
    head.add({"kernel:", kernel_text(c)});
    std::cout << head.render() << "\n";

    if (policy.at("mode") == "open") {
        std::cout << "no destination rules: egress is not filtered by destination\n";
    } else {
        Table rules({"ACTION", "PROTOCOL", "DESTINATION", "PORTS", "KERNEL HITS"});
        add_rule_rows(rules, policy.get<egress::ResolvedPolicy>(), c.is_object() ? c.value("kernel", json(nullptr)) : json(nullptr));
        std::cout << rules.render();
    }
    if (!policy.at("hosts").empty()) print_hosts(policy.at("hosts"), s.value("names", json(nullptr)));
    print_decisions(s);
}

}  // namespace

void register_egress(Command& app, Context& ctx) {
    struct EgressFlags {
        std::string id;
        std::string format = "table";
        std::vector<std::string> allow, revoke;
        bool suggest = false;
    };
    auto f = std::make_shared<EgressFlags>();
    auto* sub = app.add_subcommand("egress", "show a container's egress rules, counters and audit log; change them live");
    sub->add_option("-f,--format", f->format, "table or json")->check(IsMember({"table", "json"}));
    sub->add_option("--allow", f->allow, "add an allow rule to the running container's policy (repeatable)")
        ->allow_extra_args(false);
    sub->add_option("--revoke", f->revoke, "remove an allow rule from the running container's policy (repeatable)")
        ->allow_extra_args(false);
    sub->add_flag("--suggest", f->suggest,
                  "learning mode: print the allow-list annotation that would have allowed what the container did");
    sub->add_option("id", f->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, f] {
        const auto c = container::Container::load(ctx.global.store(), f->id);
        if (f->suggest) {
            const auto s = c.suggest_egress();
            if (s.incomplete)
                std::cerr << "warning: " << s.incomplete << " destinations past the first "
                          << egress::LearnedSet::kMaxEntries << " were not kept: the suggestion is incomplete\n";
            if (s.allow.empty()) {
                std::cerr << "no destination besides loopback was seen yet\n";
                std::cout << "{}\n";
            } else {
                std::cout << json{{std::string(egress::kAllowKey), s.allow}}.dump() << "\n";
            }
            return 0;
        }
        if (!f->allow.empty() || !f->revoke.empty()) {
            const json reply = c.change_egress(f->allow, f->revoke);
            // The policy holds either way; a container's /etc/hosts that could not follow is worth a line.
            const std::string hosts = reply.value("hosts", "");
            if (!hosts.empty() && hosts != "updated") std::cerr << "warning: /etc/hosts " << hosts << "\n";
            return 0;
        }
        const json s = c.egress_status();
        if (f->format == "json") {
            json out = {{"id", f->id}};
            out.update(s);
            std::cout << out.dump(2) << "\n";
        } else {
            print_table(s);
        }
        return 0;
    };
}

}  // namespace sandlock::cli

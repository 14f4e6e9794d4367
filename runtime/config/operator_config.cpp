#include "runtime/config/operator_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/util/error.hpp"

namespace sandlock::config {

namespace {

bool all_digits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Unit {
    std::string_view suffix;
    std::uint64_t scale;
};

// "<digits><suffix>" for the first unit whose suffix text ends with (list longer suffixes
// first), times its scale; nullopt when malformed or when it does not fit 64 bits.
template <std::size_t N>
std::optional<std::uint64_t> with_unit(std::string_view text, const Unit (&units)[N]) {
    for (const auto& [suffix, scale] : units) {
        if (!text.ends_with(suffix)) continue;
        const std::string_view digits = text.substr(0, text.size() - suffix.size());
        if (digits.empty() || digits.size() > 19 || !all_digits(digits)) return std::nullopt;
        const std::uint64_t n = std::stoull(std::string(digits));
        if (n > UINT64_MAX / scale) return std::nullopt;
        return n * scale;
    }
    return std::nullopt;
}

// ---- reading the YAML ------------------------------------------------------------------

class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const YAML::Mark& at, const std::string& reason) const {
        if (at.is_null()) throw Error(source_ + ": " + reason);
        throw Error(source_ + ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1) + ": " + reason);
    }

    void expect_map(const YAML::Node& node, const std::string& what) const {
        if (!node.IsMap()) fail(node.Mark(), what + " must be a mapping");
    }

    // Every key of `node` must be one of `known`.
    void refuse_unknown_keys(const YAML::Node& node, const std::string& where, std::initializer_list<const char*> known) const {
        for (const auto& kv : node) {
            const std::string key = scalar(kv.first, where + " key");
            if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
                std::string list;
                for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
                fail(kv.first.Mark(), "unknown key \"" + key + "\"" + (where.empty() ? "" : " in " + where) +
                                          " (expected one of " + list + ")");
            }
        }
    }

    std::string scalar(const YAML::Node& node, const std::string& what) const {
        if (!node.IsScalar()) fail(node.Mark(), what + " must be a single value");
        return node.Scalar();
    }

    // allow: a list of rules, or one ';'-separated string as the annotation takes.
    std::vector<NamedRule> rules(const YAML::Node& node, const std::string& what) const {
        std::vector<std::pair<std::string, YAML::Mark>> texts;  // each with its place
        if (node.IsSequence()) {
            for (const auto& item : node) texts.emplace_back(scalar(item, what + " entry"), item.Mark());
        } else if (node.IsScalar()) {
            for (const auto entry : egress::split_list(node.Scalar())) texts.emplace_back(std::string(entry), node.Mark());
        } else {
            fail(node.Mark(), what + " must be a list of rules");
        }
        if (texts.empty()) fail(node.Mark(), what + " has no rule");
        std::vector<NamedRule> out;
        for (auto& [text, at] : texts) {
            try {
                out.push_back({text, egress::parse_rule(text)});
            } catch (const egress::RuleError& e) {
                fail(at, what + ": rule \"" + e.rule() + "\": " + e.reason());
            }
        }
        return out;
    }

    // {allow: [...]}: the only shape a rule set has today.
    std::vector<NamedRule> rule_set(const YAML::Node& node, const std::string& what) const {
        expect_map(node, what);
        refuse_unknown_keys(node, what, {"allow"});
        if (!node["allow"]) fail(node.Mark(), what + " needs an allow list");
        return rules(node["allow"], what + ".allow");
    }

    bool boolean(const YAML::Node& node, const std::string& what) const {
        const std::string v = scalar(node, what);
        if (v == "true") return true;
        if (v == "false") return false;
        fail(node.Mark(), what + ": invalid value \"" + v + "\" (expected true or false)");
    }

private:
    std::string source_;
};

void read_default(const Reader& r, const YAML::Node& node, OperatorConfig& out) {
    if (node.IsScalar() && node.Scalar() == "none") {
        out.default_none = true;
        return;
    }
    if (!node.IsMap()) r.fail(node.Mark(), "default must be \"none\" or a mapping with an allow list");
    out.default_allow = r.rule_set(node, "default");
}

void read_profiles(const Reader& r, const YAML::Node& node, OperatorConfig& out) {
    r.expect_map(node, "profiles");
    for (const auto& kv : node) {
        const std::string name = r.scalar(kv.first, "a profile's name");
        if (name.empty() || name.find_first_of("; \t") != std::string::npos)
            r.fail(kv.first.Mark(), "profile name \"" + name + "\" may not be empty or hold ';' or blanks");
        out.profiles[name] = r.rule_set(kv.second, "profiles." + name);
    }
}

void read_audit(const Reader& r, const YAML::Node& node, OperatorConfig& out) {
    r.expect_map(node, "audit");
    r.refuse_unknown_keys(node, "audit", {"mode", "max_size"});
    if (const auto mode = node["mode"]) {
        const std::string v = r.scalar(mode, "audit.mode");
        if (v == "off") out.audit_mode = egress::Audit::Off;
        else if (v == "deny") out.audit_mode = egress::Audit::Deny;
        else if (v == "all") out.audit_mode = egress::Audit::All;
        else r.fail(mode.Mark(), "audit.mode: invalid value \"" + v + "\" (expected off, deny, all)");
    }
    if (const auto size = node["max_size"]) {
        const std::string v = r.scalar(size, "audit.max_size");
        const auto bytes = parse_size(v);
        // the shim's own bounds (shim/process.cpp): below a page the log would rotate at every line
        if (!bytes || *bytes < 4096 || *bytes > (1ULL << 40))
            r.fail(size.Mark(), "audit.max_size: invalid size \"" + v + "\" (4KiB to 1TiB, e.g. 16MiB)");
        out.audit_max_size = bytes;
    }
}

// resolve: names resolved at create, and with refresh on re-resolved by the shim as their
// TTL says, within the intervals (egress::RefreshSettings).
void read_resolve(const Reader& r, const YAML::Node& node, OperatorConfig& out) {
    r.expect_map(node, "resolve");
    r.refuse_unknown_keys(node, "resolve", {"refresh", "min_interval", "max_interval", "grace"});
    egress::RefreshSettings settings;
    std::optional<std::uint64_t> min, max;
    for (const char* key : {"min_interval", "max_interval", "grace"}) {
        if (const auto v = node[key]) {
            const std::string text = r.scalar(v, std::string("resolve.") + key);
            const auto ms = parse_duration_ms(text);
            if (!ms) r.fail(v.Mark(), std::string("resolve.") + key + ": invalid duration \"" + text + "\" (e.g. 30s, 5m, 1h)");
            if (std::string(key) != "grace" && *ms < 1000)
                r.fail(v.Mark(), std::string("resolve.") + key + ": at least 1s (every name is a DNS query each interval)");
            if (std::string(key) == "min_interval") min = settings.min_interval_ms = *ms;
            if (std::string(key) == "max_interval") max = settings.max_interval_ms = *ms;
            if (std::string(key) == "grace") settings.grace_ms = *ms;
        }
    }
    if (min && max && *min > *max) r.fail(node.Mark(), "resolve: min_interval is longer than max_interval");
    if (settings.min_interval_ms > settings.max_interval_ms)
        r.fail(node.Mark(), "resolve: min_interval is longer than max_interval (1h unless given)");
    if (const auto refresh = node["refresh"]; refresh && r.boolean(refresh, "resolve.refresh")) out.refresh = settings;
}

void read_supervisor_mode(const Reader& r, const YAML::Node& node, OperatorConfig& out) {
    const std::string v = r.scalar(node, "supervisor_mode");
    if (v == "allow") out.supervisor_mode_allowed = true;
    else if (v == "deny") out.supervisor_mode_allowed = false;
    else r.fail(node.Mark(), "supervisor_mode: invalid value \"" + v + "\" (expected allow or deny)");
}

// The operator's own rule sets must fit the ceiling too, and "no policy" never does.
void check_own_sets_fit(const Reader& r, const YAML::Node& root, const OperatorConfig& out) {
    if (out.default_none)
        r.fail(root["default"].Mark(), "default: none leaves a bundle without annotations unconfined, beyond the ceiling");
    const auto check = [&](const std::vector<NamedRule>& rules, const YAML::Node& at, const std::string& what) {
        for (const auto& rule : rules)
            if (!inside_ceiling(rule.rule, *out.ceiling)) r.fail(at.Mark(), what + ": rule \"" + rule.text + "\" is outside the ceiling");
    };
    if (out.default_allow) check(*out.default_allow, root["default"], "default");
    for (const auto& [name, rules] : out.profiles) check(rules, root["profiles"][name], "profiles." + name);
}

// ---- applying it ------------------------------------------------------------------------

// The allow rules' texts, in Policy::allow's order (the annotation's entries).
std::vector<std::string> annotation_rule_texts(const std::map<std::string, std::string>& annotations) {
    std::vector<std::string> texts;
    if (const auto it = annotations.find(std::string(egress::kAllowKey)); it != annotations.end())
        for (const auto entry : egress::split_list(it->second)) texts.emplace_back(entry);
    return texts;
}

std::string rule_list(const std::vector<NamedRule>& rules) {
    std::string out;
    for (const auto& r : rules) out += (out.empty() ? "" : ", ") + r.text;
    return out;
}

void add_rules(egress::Policy& p, std::vector<std::string>& texts, const std::vector<NamedRule>& rules) {
    p.mode = egress::Mode::Allow;
    p.network_keys = true;
    for (const auto& r : rules) {
        p.allow.push_back(r.rule);
        texts.push_back(r.text);
    }
}

void add_profiles(egress::Policy& p, std::vector<std::string>& texts, const OperatorConfig& config) {
    if (p.profiles.empty()) return;
    const std::string key(egress::kProfileKey);
    if (p.mode == egress::Mode::Deny)
        throw Error(key + ": cannot be combined with " + std::string(egress::kDenyKey) + " (profiles are allow rules)");
    for (const auto& name : p.profiles) {
        const auto it = config.profiles.find(name);
        if (it == config.profiles.end()) {
            std::string known;
            for (const auto& [n, rules] : config.profiles) known += (known.empty() ? "" : ", ") + n;
            throw Error(key + ": unknown profile \"" + name + "\" (" + config.source +
                        (known.empty() ? " defines none)" : " defines " + known + ")"));
        }
        add_rules(p, texts, it->second);
    }
}

void enforce_ceiling(egress::Policy& p, const std::vector<std::string>& texts, const OperatorConfig& config) {
    if (!config.ceiling || !p.active()) return;
    const auto& ceiling = *config.ceiling;
    const std::string limits = "the operator's ceiling (" + config.source + " allows " + rule_list(ceiling) + ")";
    if (p.mode == egress::Mode::Deny)
        throw Error(std::string(egress::kDenyKey) + ": a deny list allows every destination it does not name, beyond " + limits);
    if (p.learn)
        throw Error(std::string(egress::kLearnKey) + ": learning mode allows every destination, beyond " + limits);
    if (p.mode == egress::Mode::Open) {  // only settings (loopback, bind): the ceiling is the allow list
        std::vector<std::string> unused;
        add_rules(p, unused, ceiling);
        return;
    }
    for (std::size_t i = 0; i < p.allow.size(); ++i) {
        if (inside_ceiling(p.allow[i], ceiling)) continue;
        const std::string text = i < texts.size() ? texts[i] : "?";
        throw Error(std::string(egress::kAllowKey) + ": rule \"" + text + "\" is outside " + limits);
    }
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
    static const Unit units[] = {{"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
                                 {"TiB", 1ULL << 40}, {"B", 1},           {"", 1}};
    return with_unit(text, units);
}

std::optional<std::uint64_t> parse_duration_ms(std::string_view text) {
    static const Unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
    return with_unit(text, units);
}

OperatorConfig parse_operator_config(std::string_view yaml, const std::string& source) {
    const Reader r(source);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::ParserException& e) {
        r.fail(e.mark, e.msg);
    }
    OperatorConfig out;
    out.source = source;
    if (root.IsNull()) return out;  // an empty file: the defaults
    r.expect_map(root, "the configuration");
    r.refuse_unknown_keys(root, "", {"default", "profiles", "ceiling", "audit", "resolve", "supervisor_mode"});
    try {
        if (const auto n = root["default"]) read_default(r, n, out);
        if (const auto n = root["profiles"]) read_profiles(r, n, out);
        if (const auto n = root["ceiling"]) out.ceiling = r.rule_set(n, "ceiling");
        if (const auto n = root["audit"]) read_audit(r, n, out);
        if (const auto n = root["resolve"]) read_resolve(r, n, out);
        if (const auto n = root["supervisor_mode"]) read_supervisor_mode(r, n, out);
    } catch (const YAML::Exception& e) {
        r.fail(e.mark, e.msg);
    }
    if (out.ceiling) check_own_sets_fit(r, root, out);
    return out;
}

OperatorConfig load_operator_config(const std::string& explicit_path) {
    std::string path = explicit_path;
    if (path.empty())
        if (const char* env = std::getenv(kPathEnv); env && *env) path = env;
    const bool required = !path.empty();
    if (path.empty()) path = kDefaultPath;
    std::ifstream in(path);
    if (!in) {
        if (!required && errno == ENOENT) return {};
        throw Error(path + ": " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_operator_config(text.str(), path);
}

bool inside_ceiling(const egress::Rule& rule, const std::vector<NamedRule>& ceiling) {
    std::vector<egress::Rule> rules;
    for (const auto& c : ceiling) rules.push_back(c.rule);
    return egress::inside_ceiling(rule, rules);
}

egress::Policy effective_policy(const std::map<std::string, std::string>& annotations, const OperatorConfig& config) {
    egress::Policy p = egress::parse_policy(annotations);
    std::vector<std::string> texts = annotation_rule_texts(annotations);
    if (!p.active()) {
        if (config.default_allow) add_rules(p, texts, *config.default_allow);
        else if (config.ceiling) add_rules(p, texts, *config.ceiling);
    }
    add_profiles(p, texts, config);
    // (learning records everything, whatever the default)
    if (!annotations.count(std::string(egress::kAuditKey)) && config.audit_mode && !p.learn) p.audit = *config.audit_mode;
    enforce_ceiling(p, texts, config);
    if (config.refresh && p.active()) p.refresh = config.refresh;
    // Kept with the container: live changes must stay inside it too.
    if (config.ceiling && p.active()) {
        p.ceiling.emplace();
        for (const auto& named : *config.ceiling) p.ceiling->push_back(named.rule);
    }
    return p;
}

}  // namespace sandlock::config

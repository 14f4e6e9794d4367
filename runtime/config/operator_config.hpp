// The operator's configuration (sandlock-runc-config(5)): a YAML file that decides what a
// bundle's io.sandlock.network.* annotations cannot — the policy of a bundle without any,
// named rule sets (profiles) a bundle may ask for, and a ceiling no policy may exceed.
//
//   /etc/sandlock-runc/config.yaml, or --config PATH, or $SANDLOCK_RUNC_CONFIG.
//   A missing default file means the built-in defaults (no default policy, no profiles,
//   no ceiling); a missing explicit one, a malformed one or an unknown key fails every
//   command that reads it with "FILE:LINE:COLUMN: reason".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/egress/policy.hpp"
#include "runtime/egress/rules.hpp"

namespace sandlock::config {

inline constexpr const char* kDefaultPath = "/etc/sandlock-runc/config.yaml";
inline constexpr const char* kPathEnv = "SANDLOCK_RUNC_CONFIG";

// A rule as the operator wrote it (for messages) and as the grammar reads it.
struct NamedRule {
    std::string text;
    egress::Rule rule;
};

struct OperatorConfig {
    std::string source = "the built-in defaults";  // the file, for messages
    // The policy of a bundle with no io.sandlock.network.* annotation; nullopt: none (the
    // plain runtime) — or the ceiling, when there is one (see effective_policy).
    std::optional<std::vector<NamedRule>> default_allow;
    bool default_none = false;  // `default: none` written out (refused with a ceiling)
    std::map<std::string, std::vector<NamedRule>> profiles;
    std::optional<std::vector<NamedRule>> ceiling;
    std::optional<egress::Audit> audit_mode;      // when the bundle has no io.sandlock.audit
    std::optional<std::uint64_t> audit_max_size;  // bytes; the shim's audit.log cap
    std::optional<bool> supervisor_mode_allowed;  // supervisor_mode: allow | deny
    std::optional<egress::RefreshSettings> refresh;  // resolve: {refresh: true, ...}
};

// Parses the YAML text of `source` (a file name, for messages). Throws sandlock::Error
// "SOURCE:LINE:COLUMN: reason" (1-based) for a syntax error, an unknown key, a value of
// the wrong shape, or a rule that does not parse.
OperatorConfig parse_operator_config(std::string_view yaml, const std::string& source);

// explicit_path: --config; empty means $SANDLOCK_RUNC_CONFIG, else kDefaultPath, which
// may be missing (the built-in defaults). An explicit file must exist.
OperatorConfig load_operator_config(const std::string& explicit_path);

// "16MiB", "512KiB", "1GiB", "4096": bytes. nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);
// "30s", "5m", "1h", "250ms": milliseconds. nullopt when malformed.
std::optional<std::uint64_t> parse_duration_ms(std::string_view text);

// The bundle's policy under the operator's configuration:
//  - no io.sandlock.network.* annotation: the configured default; without one, the
//    ceiling when there is one (so leaving the annotations out never exceeds it), else
//    no policy (the plain runtime);
//  - io.sandlock.network.profile: "a;b" adds the named profiles' rules to the bundle's
//    own allow rules (an unknown name is an error naming the configured ones);
//  - io.sandlock.audit absent: audit.mode;
//  - a ceiling: every allow rule must fall inside it (same protocol; its host inside a
//    ceiling rule's — any IP, the same name, or a CIDR holding the address or CIDR —
//    for each of its ports); a deny-list policy, which allows everything it does not
//    list, is refused under a ceiling. Throws one line naming the annotation and rule.
egress::Policy effective_policy(const std::map<std::string, std::string>& annotations, const OperatorConfig& config);

// Whether `rule` falls inside one of `ceiling` (see effective_policy).
bool inside_ceiling(const egress::Rule& rule, const std::vector<NamedRule>& ceiling);

}  // namespace sandlock::config

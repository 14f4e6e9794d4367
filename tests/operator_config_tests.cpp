// The operator's configuration (runtime/config): every key, every error with its place in
// the file, and how the default, profiles and ceiling make a bundle's effective policy.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "runtime/config/operator_config.hpp"
#include "runtime/util/error.hpp"

namespace operator_config {
using namespace sandlock;
using config::OperatorConfig;
using config::parse_operator_config;
using Annotations = std::map<std::string, std::string>;

// The message of the Error that parsing `yaml` throws ("" when it parses).
std::string error_of(const std::string& yaml) {
    try {
        parse_operator_config(yaml, "c.yaml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string policy_error(const Annotations& annotations, const OperatorConfig& cfg) {
    try {
        config::effective_policy(annotations, cfg);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

const char* kIssueExample = R"(
default:                       # bundles without io.sandlock.network.* annotations
  allow: ["10.0.0.53:53", "udp://10.0.0.53:53"]
profiles:
  pypi: {allow: ["pypi.org:443", "files.pythonhosted.org:443"]}
ceiling:                       # no effective allow rule may exceed these
  allow: ["*:443", "*:80", "udp://10.0.0.53:53", "10.0.0.53:53"]
audit: {mode: deny, max_size: 16MiB}
resolve: {refresh: false, min_interval: 30s, max_interval: 1h, grace: 5m}
supervisor_mode: deny          # allow: run a policy without the kernel layer
)";

}  // namespace operator_config

BOOST_AUTO_TEST_SUITE(operator_config)

BOOST_AUTO_TEST_CASE(every_key_is_read) {
    const OperatorConfig c = parse_operator_config(kIssueExample, "c.yaml");
    BOOST_TEST(c.source == "c.yaml");
    BOOST_REQUIRE(c.default_allow);
    BOOST_TEST(c.default_allow->size() == 2u);
    BOOST_TEST((*c.default_allow)[1].text == "udp://10.0.0.53:53");
    BOOST_TEST(c.profiles.at("pypi").size() == 2u);
    BOOST_TEST(c.profiles.at("pypi")[0].rule.host.value() == "pypi.org");
    BOOST_REQUIRE(c.ceiling);
    BOOST_TEST(c.ceiling->size() == 4u);
    BOOST_TEST((c.audit_mode == egress::Audit::Deny));
    BOOST_TEST(c.audit_max_size.value() == 16u * 1024 * 1024);
    BOOST_TEST(c.supervisor_mode_allowed.value() == false);
    BOOST_TEST(parse_operator_config("supervisor_mode: allow", "c").supervisor_mode_allowed.value());
}

BOOST_AUTO_TEST_CASE(an_empty_file_and_default_none_are_the_builtin_defaults) {
    for (const char* text : {"", "# nothing\n", "default: none\n"}) {
        const OperatorConfig c = parse_operator_config(text, "c");
        BOOST_TEST(!c.default_allow);
        BOOST_TEST(!c.ceiling);
        BOOST_TEST(c.profiles.empty());
        BOOST_TEST(!c.audit_mode);
        BOOST_TEST(!c.supervisor_mode_allowed);
    }
}

BOOST_AUTO_TEST_CASE(errors_name_the_file_line_and_column) {
    BOOST_TEST(error_of("default: none\nceilng: {allow: ['*:443']}\n") ==
               "c.yaml:2:1: unknown key \"ceilng\" (expected one of default, profiles, ceiling, audit, resolve, supervisor_mode)");
    BOOST_TEST(error_of("audit:\n  mode: loud\n") == "c.yaml:2:9: audit.mode: invalid value \"loud\" (expected off, deny, all)");
    BOOST_TEST(error_of("audit: {mode: deny, size: 1}\n") ==
               "c.yaml:1:21: unknown key \"size\" in audit (expected one of mode, max_size)");
    BOOST_TEST(error_of("audit: {max_size: 16MB}\n") == "c.yaml:1:19: audit.max_size: invalid size \"16MB\" (4KiB to 1TiB, e.g. 16MiB)");
    BOOST_TEST(error_of("profiles:\n  web: {allow: ['a.example:0']}\n") ==
               "c.yaml:2:17: profiles.web.allow: rule \"a.example:0\": port 0 is not valid");
    BOOST_TEST(error_of("profiles:\n  web: {deny: ['*:80']}\n") ==
               "c.yaml:2:9: unknown key \"deny\" in profiles.web (expected one of allow)");
    BOOST_TEST(error_of("supervisor_mode: maybe\n") == "c.yaml:1:18: supervisor_mode: invalid value \"maybe\" (expected allow or deny)");
    BOOST_TEST(error_of("default: [1, 2]\n") == "c.yaml:1:10: default must be \"none\" or a mapping with an allow list");
    BOOST_TEST(error_of("- a\n- b\n") == "c.yaml:1:1: the configuration must be a mapping");
    // a syntax error: yaml-cpp's mark and reason
    BOOST_TEST(error_of("default: {allow: [\n").starts_with("c.yaml:2:1: "));
    BOOST_TEST(error_of("resolve: {min_interval: 5m, max_interval: 30s}\n") ==
               "c.yaml:1:10: resolve: min_interval is longer than max_interval");
    BOOST_TEST(error_of("resolve: {grace: soon}\n") == "c.yaml:1:18: resolve.grace: invalid duration \"soon\" (e.g. 30s, 5m, 1h)");
    BOOST_TEST(error_of("resolve: {refresh: true, min_interval: 500ms}\n") ==
               "c.yaml:1:40: resolve.min_interval: at least 1s (every name is a DNS query each interval)");
    BOOST_TEST(error_of("resolve: {min_interval: 2h}\n") ==
               "c.yaml:1:10: resolve: min_interval is longer than max_interval (1h unless given)");
}

BOOST_AUTO_TEST_CASE(refresh_settings_reach_the_policy) {
    const auto on = parse_operator_config("resolve: {refresh: true, min_interval: 2s, grace: 1m}\n", "c.yaml");
    BOOST_REQUIRE(on.refresh.has_value());
    BOOST_TEST(on.refresh->min_interval_ms == 2000u);
    BOOST_TEST(on.refresh->max_interval_ms == 3'600'000u);
    BOOST_TEST(on.refresh->grace_ms == 60'000u);
    BOOST_TEST(!parse_operator_config("resolve: {refresh: false, min_interval: 2s}\n", "c.yaml").refresh.has_value());
    // kept with a policy (the shim reads it from egress.json), not with an unconfined bundle
    const auto p = effective_policy({{"io.sandlock.network.allow", "a.example:443"}}, on);
    BOOST_REQUIRE(p.refresh.has_value());
    BOOST_TEST(p.refresh->min_interval_ms == 2000u);
    BOOST_TEST(!effective_policy({}, on).refresh.has_value());
}

BOOST_AUTO_TEST_CASE(the_operators_own_sets_must_fit_the_ceiling) {
    BOOST_TEST(error_of("default: {allow: ['10.0.0.1:22']}\nceiling: {allow: ['*:443']}\n") ==
               "c.yaml:1:10: default: rule \"10.0.0.1:22\" is outside the ceiling");
    BOOST_TEST(error_of("profiles:\n  ssh: {allow: ['git.example:22']}\nceiling: {allow: ['*:443']}\n") ==
               "c.yaml:2:8: profiles.ssh: rule \"git.example:22\" is outside the ceiling");
    BOOST_TEST(error_of("default: none\nceiling: {allow: ['*:443']}\n") ==
               "c.yaml:1:10: default: none leaves a bundle without annotations unconfined, beyond the ceiling");
}

BOOST_AUTO_TEST_CASE(sizes_and_durations) {
    BOOST_TEST(config::parse_size("4096").value() == 4096u);
    BOOST_TEST(config::parse_size("512KiB").value() == 512u * 1024);
    BOOST_TEST(config::parse_size("1GiB").value() == 1u << 30);
    BOOST_TEST(!config::parse_size("1.5MiB"));
    BOOST_TEST(!config::parse_size("MiB"));
    BOOST_TEST(!config::parse_size("99999999999999999TiB"));  // does not fit 64 bits
    BOOST_TEST(config::parse_duration_ms("250ms").value() == 250u);
    BOOST_TEST(config::parse_duration_ms("30s").value() == 30'000u);
    BOOST_TEST(config::parse_duration_ms("5m").value() == 300'000u);
    BOOST_TEST(config::parse_duration_ms("1h").value() == 3'600'000u);
    BOOST_TEST(!config::parse_duration_ms("1d"));
    BOOST_TEST(!config::parse_duration_ms("-5s"));
}

BOOST_AUTO_TEST_CASE(a_bundle_without_annotations_gets_the_default) {
    const OperatorConfig c = parse_operator_config("default: {allow: ['10.0.0.53:53', 'udp://10.0.0.53:53']}", "c");
    const egress::Policy p = config::effective_policy({}, c);
    BOOST_TEST(p.active());
    BOOST_TEST((p.mode == egress::Mode::Allow));
    BOOST_TEST(p.allow.size() == 2u);
    // without a configuration: no policy at all, the plain runtime
    BOOST_TEST(!config::effective_policy({}, OperatorConfig{}).active());
    // a bundle's own annotation replaces the default
    const egress::Policy own = config::effective_policy({{"io.sandlock.network.allow", "10.1.1.1:80"}}, c);
    BOOST_REQUIRE(own.allow.size() == 1u);
    BOOST_TEST(own.allow[0].ports == std::vector<std::uint16_t>{80});
}

BOOST_AUTO_TEST_CASE(under_a_ceiling_without_a_default_a_bare_bundle_gets_the_ceiling) {
    const OperatorConfig c = parse_operator_config("ceiling: {allow: ['*:443']}", "c");
    const egress::Policy p = config::effective_policy({}, c);
    BOOST_TEST(p.active());
    BOOST_REQUIRE(p.allow.size() == 1u);
    BOOST_TEST(!p.allow[0].host);
    // a bundle with settings only (loopback) is confined to the ceiling as well
    const egress::Policy settings = config::effective_policy({{"io.sandlock.network.loopback", "deny"}}, c);
    BOOST_TEST((settings.mode == egress::Mode::Allow));
    BOOST_TEST(settings.allow.size() == 1u);
}

BOOST_AUTO_TEST_CASE(profiles_add_to_the_bundles_rules) {
    const OperatorConfig c = parse_operator_config(kIssueExample, "/etc/sandlock-runc/config.yaml");
    const egress::Policy p = config::effective_policy(
        {{"io.sandlock.network.allow", "api.example:443"}, {"io.sandlock.network.profile", "pypi"}}, c);
    BOOST_TEST(p.allow.size() == 3u);
    // a profile alone is an allow list
    const egress::Policy alone = config::effective_policy({{"io.sandlock.network.profile", " pypi ; "}}, c);
    BOOST_TEST((alone.mode == egress::Mode::Allow));
    BOOST_TEST(alone.allow.size() == 2u);
    BOOST_TEST(policy_error({{"io.sandlock.network.profile", "pypi;npm"}}, c) ==
               "io.sandlock.network.profile: unknown profile \"npm\" (/etc/sandlock-runc/config.yaml defines pypi)");
    BOOST_TEST(policy_error({{"io.sandlock.network.profile", "pypi"}}, OperatorConfig{}) ==
               "io.sandlock.network.profile: unknown profile \"pypi\" (the built-in defaults defines none)");
    BOOST_TEST(policy_error({{"io.sandlock.network.deny", "private"}, {"io.sandlock.network.profile", "pypi"}}, c) ==
               "io.sandlock.network.profile: cannot be combined with io.sandlock.network.deny (profiles are allow rules)");
}

BOOST_AUTO_TEST_CASE(a_rule_beyond_the_ceiling_fails_naming_it) {
    const OperatorConfig c = parse_operator_config(kIssueExample, "/etc/sandlock-runc/config.yaml");
    const std::string ceiling =
        "the operator's ceiling (/etc/sandlock-runc/config.yaml allows *:443, *:80, udp://10.0.0.53:53, 10.0.0.53:53)";
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "a.example:443;b.example:22"}}, c) ==
               "io.sandlock.network.allow: rule \"b.example:22\" is outside " + ceiling);
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "*:*"}}, c) ==
               "io.sandlock.network.allow: rule \"*:*\" is outside " + ceiling);
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "udp://1.1.1.1:53"}}, c) ==
               "io.sandlock.network.allow: rule \"udp://1.1.1.1:53\" is outside " + ceiling);
    BOOST_TEST(policy_error({{"io.sandlock.network.deny", "private"}}, c) ==
               "io.sandlock.network.deny: a deny list allows every destination it does not name, beyond " + ceiling);
    // inside: several ports of one host covered by two ceiling rules; a CIDR's address
    BOOST_TEST(policy_error({{"io.sandlock.network.allow", "a.example:80,443;udp://10.0.0.53:53"}}, c) == "");
}

BOOST_AUTO_TEST_CASE(inside_the_ceiling_by_protocol_host_and_port) {
    const OperatorConfig c = parse_operator_config(
        "ceiling: {allow: ['10.0.0.0/8:*', 'api.example:443', 'icmp://*', '[fd00::/8]:53']}", "c");
    const auto inside = [&](const char* rule) { return config::inside_ceiling(egress::parse_rule(rule), *c.ceiling); };
    BOOST_TEST(inside("10.1.2.3:22"));
    BOOST_TEST(inside("10.1.0.0/16:*"));
    BOOST_TEST(!inside("10.0.0.0/7:80"));            // wider than the block
    BOOST_TEST(!inside("udp://10.1.2.3:53"));        // another protocol
    BOOST_TEST(inside("API.example:443"));           // names compare without case
    BOOST_TEST(!inside("api.example:*"));
    BOOST_TEST(!inside("other.example:443"));        // a name is not known to be in any block
    BOOST_TEST(inside("icmp://192.0.2.1"));
    BOOST_TEST(inside("[fd00::1]:53"));
    BOOST_TEST(!inside("[fe80::1]:53"));
}

BOOST_AUTO_TEST_CASE(the_audit_mode_is_the_bundles_else_the_operators) {
    const OperatorConfig c = parse_operator_config("audit: {mode: all}", "c");
    const Annotations allow{{"io.sandlock.network.allow", "10.0.0.1:80"}};
    BOOST_TEST((config::effective_policy(allow, c).audit == egress::Audit::All));
    Annotations own = allow;
    own["io.sandlock.audit"] = "off";
    BOOST_TEST((config::effective_policy(own, c).audit == egress::Audit::Off));
}

BOOST_AUTO_TEST_CASE(loading_the_file) {
    const std::string dir = std::filesystem::temp_directory_path() / ("sandlock-config-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/config.yaml";
    std::ofstream(path) << "ceiling: {allow: ['*:443']}\n";
    BOOST_TEST(config::load_operator_config(path).source == path);
    BOOST_CHECK_THROW(config::load_operator_config(dir + "/missing.yaml"), Error);  // explicit: must exist
    ::setenv(config::kPathEnv, path.c_str(), 1);
    BOOST_TEST(config::load_operator_config("").ceiling.has_value());
    ::unsetenv(config::kPathEnv);
    std::filesystem::remove_all(dir);
}

// The commented example that `make install` ships parses, and means what its comments say.
BOOST_AUTO_TEST_CASE(the_shipped_example_parses) {
    std::ifstream in("config.yaml.example");  // the tests run from the repository's top
    BOOST_REQUIRE_MESSAGE(in, "config.yaml.example not found: run the unit tests from the repository's top");
    std::ostringstream text;
    text << in.rdbuf();
    const OperatorConfig c = parse_operator_config(text.str(), "config.yaml.example");
    BOOST_TEST(c.default_allow.has_value());
    BOOST_TEST(c.profiles.count("pypi") == 1u);
    BOOST_TEST(c.ceiling.has_value());
    BOOST_TEST(c.supervisor_mode_allowed.value() == false);
}
BOOST_AUTO_TEST_SUITE_END()

// The caller configuration shipped in integration/config/ (issue 4): the Kubernetes
// manifests parse (yaml-cpp), and the names that tie them together agree: the
// RuntimeClass handler is the runtime handler configured for containerd and CRI-O, the
// example pod uses that RuntimeClass, its annotations are sandlock's, valid, and let
// through by both the containerd snippet (pod_annotations) and the CRI-O snippet
// (allowed_annotations); containers.conf registers sandlock-runc for JSON error logs.
// Paths are relative to the repository root, the directory make runs the tests in.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/egress/policy.hpp"
#include "runtime/util/fs.hpp"

namespace manifests {

const std::string kConfigDir = "integration/config/";

// A TOML file reduced to what these checks need: table name -> key -> raw value, the
// value's continuation lines (multi-line arrays) joined. Comments and blank lines are
// dropped. Not a TOML parser: the shipped files use only tables, strings and arrays.
using Tables = std::map<std::string, std::map<std::string, std::string>>;

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return std::string(s.substr(first, last - first + 1));
}

// The line without a trailing comment (a '#' outside double quotes).
std::string strip_comment(const std::string& line) {
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '"') quoted = !quoted;
        if (line[i] == '#' && !quoted) return line.substr(0, i);
    }
    return line;
}

int bracket_depth(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '[')) -
           static_cast<int>(std::count(s.begin(), s.end(), ']'));
}

Tables read_toml_tables(const std::string& path) {
    Tables tables;
    std::string table, key, value;
    int open = 0;  // unclosed '[' of the value being read
    std::size_t pos = 0;
    const std::string text = sandlock::fs::read_file(path);
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string line = trim(strip_comment(text.substr(pos, end - pos)));
        pos = end + 1;
        if (line.empty()) continue;
        if (open > 0) {
            value += " " + line;
            open += bracket_depth(line);
            if (open <= 0) tables[table][key] = value;
            continue;
        }
        if (line.front() == '[') {
            table = line.substr(1, line.size() - 2);
            tables[table];
            continue;
        }
        const auto eq = line.find('=');
        BOOST_TEST_REQUIRE(eq != std::string::npos, path << ": not a key = value line: " << line);
        key = trim(std::string_view(line).substr(0, eq));
        value = trim(std::string_view(line).substr(eq + 1));
        open = bracket_depth(value);
        if (open <= 0) tables[table][key] = value;
    }
    return tables;
}

// The double-quoted strings of a TOML value ("x" or ["a", "b"]).
std::vector<std::string> quoted_strings(const std::string& value) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while ((pos = value.find('"', pos)) != std::string::npos) {
        const auto end = value.find('"', pos + 1);
        if (end == std::string::npos) break;
        out.push_back(value.substr(pos + 1, end - pos - 1));
        pos = end + 1;
    }
    return out;
}

// Whether a containerd pod_annotations entry (a key or a "prefix*" glob) admits key.
bool glob_admits(const std::string& pattern, const std::string& key) {
    if (!pattern.empty() && pattern.back() == '*')
        return key.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
    return pattern == key;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

YAML::Node load_yaml(const std::string& name) {
    return YAML::LoadFile(kConfigDir + name);
}

std::string handler() {
    return load_yaml("runtimeclass.yaml")["handler"].as<std::string>();
}

std::map<std::string, std::string> pod_annotations() {
    return load_yaml("pod-egress.yaml")["metadata"]["annotations"]
        .as<std::map<std::string, std::string>>();
}

// Every annotation key sandlock-runc reads.
const std::vector<std::string>& sandlock_keys() {
    namespace eg = sandlock::egress;
    static const std::vector<std::string> keys = {
        std::string(eg::kAllowKey), std::string(eg::kDenyKey), std::string(eg::kAllowBindKey),
        std::string(eg::kLoopbackKey), std::string(eg::kAuditKey)};
    return keys;
}

}  // namespace manifests

BOOST_AUTO_TEST_SUITE(manifests)

BOOST_AUTO_TEST_CASE(runtimeclass_is_a_node_k8s_io_runtimeclass_with_the_sandlock_handler) {
    const auto rc = load_yaml("runtimeclass.yaml");
    BOOST_TEST(rc["apiVersion"].as<std::string>() == "node.k8s.io/v1");
    BOOST_TEST(rc["kind"].as<std::string>() == "RuntimeClass");
    BOOST_TEST(rc["metadata"]["name"].as<std::string>() == "sandlock");
    BOOST_TEST(handler() == "sandlock");
}

BOOST_AUTO_TEST_CASE(example_pod_uses_the_runtimeclass_and_a_valid_sandlock_policy) {
    const auto pod = load_yaml("pod-egress.yaml");
    BOOST_TEST(pod["apiVersion"].as<std::string>() == "v1");
    BOOST_TEST(pod["kind"].as<std::string>() == "Pod");
    BOOST_TEST(pod["spec"]["runtimeClassName"].as<std::string>() ==
               load_yaml("runtimeclass.yaml")["metadata"]["name"].as<std::string>());
    BOOST_TEST_REQUIRE(pod["spec"]["containers"].IsSequence());
    BOOST_TEST(pod["spec"]["containers"].size() >= 1u);
    BOOST_TEST(!pod["spec"]["containers"][0]["image"].as<std::string>().empty());

    const auto annotations = pod_annotations();
    BOOST_TEST_REQUIRE(!annotations.empty());
    for (const auto& [key, value] : annotations)
        BOOST_TEST(contains(sandlock_keys(), key), "not a sandlock annotation: " << key);
    // the runtime's own parser accepts the policy (names are resolved later, at create)
    const auto policy = sandlock::egress::parse_policy(annotations);
    BOOST_TEST(policy.active());
    BOOST_TEST(std::string(to_string(policy.mode)) == to_string(sandlock::egress::Mode::Allow));
    BOOST_TEST(policy.allow.size() == 3u);
}

BOOST_AUTO_TEST_CASE(containerd_snippet_defines_the_handler_and_passes_the_pod_annotations) {
    const auto tables = read_toml_tables(kConfigDir + "containerd-sandlock.toml");
    const std::string cri = R"(plugins."io.containerd.grpc.v1.cri".containerd)";
    const std::string runtime = cri + ".runtimes." + handler();
    BOOST_TEST_REQUIRE(tables.count(runtime) == 1u, "no table [" << runtime << "]");
    const auto& rt = tables.at(runtime);
    BOOST_TEST(quoted_strings(rt.at("runtime_type")) == std::vector<std::string>{"io.containerd.runc.v2"});
    const auto allowed = quoted_strings(rt.at("pod_annotations"));
    for (const auto& [key, value] : pod_annotations()) {
        BOOST_TEST(std::any_of(allowed.begin(), allowed.end(),
                               [&](const std::string& p) { return glob_admits(p, key); }),
                   "pod_annotations does not let " << key << " through");
    }
    // and every key the runtime reads, not only the example's
    for (const auto& key : sandlock_keys())
        BOOST_TEST(std::any_of(allowed.begin(), allowed.end(),
                               [&](const std::string& p) { return glob_admits(p, key); }),
                   "pod_annotations does not let " << key << " through");
    BOOST_TEST_REQUIRE(tables.count(runtime + ".options") == 1u);
    const auto binary = quoted_strings(tables.at(runtime + ".options").at("BinaryName"));
    BOOST_TEST_REQUIRE(binary.size() == 1u);
    BOOST_TEST(binary[0].ends_with("/sandlock-runc"));
    // imported, the file replaces the whole CRI section: the default handler must be in it
    BOOST_TEST_REQUIRE(tables.count(cri) == 1u);
    const auto default_name = quoted_strings(tables.at(cri).at("default_runtime_name"));
    BOOST_TEST_REQUIRE(default_name.size() == 1u);
    BOOST_TEST(tables.count(cri + ".runtimes." + default_name[0]) == 1u);
}

BOOST_AUTO_TEST_CASE(crio_snippet_defines_the_handler_and_allows_every_sandlock_annotation) {
    const auto tables = read_toml_tables(kConfigDir + "crio-sandlock.conf");
    const std::string runtime = "crio.runtime.runtimes." + handler();
    BOOST_TEST_REQUIRE(tables.count(runtime) == 1u, "no table [" << runtime << "]");
    const auto& rt = tables.at(runtime);
    const auto path = quoted_strings(rt.at("runtime_path"));
    BOOST_TEST_REQUIRE(path.size() == 1u);
    BOOST_TEST(path[0].ends_with("/sandlock-runc"));
    const auto allowed = quoted_strings(rt.at("allowed_annotations"));
    for (const auto& key : sandlock_keys())
        BOOST_TEST(contains(allowed, key), "allowed_annotations lacks " << key);
    for (const auto& [key, value] : pod_annotations())
        BOOST_TEST(contains(allowed, key), "allowed_annotations lacks " << key);
}

BOOST_AUTO_TEST_CASE(containers_conf_registers_sandlock_runc_with_json_error_logs) {
    const auto tables = read_toml_tables(kConfigDir + "containers.conf");
    BOOST_TEST_REQUIRE(tables.count("engine") == 1u);
    BOOST_TEST(contains(quoted_strings(tables.at("engine").at("runtime_supports_json")), "sandlock-runc"));
    BOOST_TEST_REQUIRE(tables.count("engine.runtimes") == 1u);
    const auto paths = quoted_strings(tables.at("engine.runtimes").at("sandlock-runc"));
    BOOST_TEST_REQUIRE(!paths.empty());
    for (const auto& p : paths) BOOST_TEST(p.ends_with("/sandlock-runc"));
    BOOST_TEST_REQUIRE(tables.count("containers") == 1u);
    const auto ulimits = quoted_strings(tables.at("containers").at("default_ulimits"));
    BOOST_TEST(std::any_of(ulimits.begin(), ulimits.end(),
                           [](const std::string& u) { return u.starts_with("nofile="); }));
}

BOOST_AUTO_TEST_SUITE_END()

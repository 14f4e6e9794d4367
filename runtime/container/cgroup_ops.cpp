// Container's operations through its cgroup: pause, resume, update and the
// stats of `events` (container.hpp).
#include "runtime/cgroups/resources.hpp"
#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::container {

namespace {

// The saved config with linux.resources updated (key order kept).
nlohmann::ordered_json updated_config(const std::string& config_path, const nlohmann::json& delta) {
    auto saved = nlohmann::ordered_json::parse(fs::read_file(config_path));
    if (!saved.is_object() || (saved.contains("linux") && !saved["linux"].is_object()))
        throw Error("update: the saved config " + config_path + " is not a config.json object");
    nlohmann::json resources;
    if (saved.contains("linux") && saved["linux"].contains("resources"))
        resources = nlohmann::json::parse(saved["linux"]["resources"].dump());
    cgroups::merge_resources_update(resources, delta);
    saved["linux"]["resources"] = nlohmann::ordered_json::parse(resources.dump());
    return saved;
}

}  // namespace

void Container::pause() const {
    if (!can_pause()) throw Error("container not running");
    require_cgroup(" to freeze")->freeze();
}

void Container::resume() const {
    if (!can_resume()) throw Error("container not paused");
    open_cgroup()->thaw();
}

void Container::update(const nlohmann::json& resources) const {
    if (!can_update()) throw Error("container not running");
    auto cgroup = require_cgroup(" to update");
    cgroups::Resources r = cgroups::parse_resources(resources, "resources");
    r.devices.reset();
    const std::string config_path = store_.config_path(id());
    nlohmann::ordered_json config = updated_config(config_path, resources);
    // v2 derives memory.swap.max from the limit: complete a half-given pair from the config.
    if (cgroup->kind() == cgroups::Kind::V2) {
        auto current = nlohmann::json::parse(config["linux"]["resources"].dump());
        cgroups::complete_v2_memory_update(r, cgroups::parse_resources(current));
    }
    cgroup->apply(r);
    fs::write_file_atomic(config_path, config.dump(2), 0600);
}

nlohmann::json Container::stats() const {
    if (!can_get_stats()) throw Error("container not running");
    return require_cgroup("")->stats();
}

bool Container::still_running() const { return init_alive(state_) && open_cgroup()->exists(); }

}  // namespace sandlock::container

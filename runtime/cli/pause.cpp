#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_pause(Command& app, Context& ctx) {
    auto id = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("pause", "suspend all processes of a container (cgroup freezer)");
    sub->add_option("id", *id, "container id")->required();
    ctx.handlers[sub] = [&ctx, id] {
        container::Container::load(ctx.global.store(), *id).pause();
        return 0;
    };
}

}  // namespace sandlock::cli

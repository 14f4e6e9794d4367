#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_start(Command& app, Context& ctx) {
    auto id = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("start", "start a created container");
    sub->add_option("id", *id, "container id")->required();
    ctx.handlers[sub] = [&ctx, id] {
        container::Container::load(ctx.global.store(), *id).start();
        return 0;
    };
}

}  // namespace sandlock::cli

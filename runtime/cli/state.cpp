#include <iostream>

#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_state(Command& app, Context& ctx) {
    auto id = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("state", "print a container's OCI state as JSON");
    sub->add_option("id", *id, "container id")->required();
    ctx.handlers[sub] = [&ctx, id] {
        std::cout << container::Container::load(ctx.global.store(), *id).state_json().dump(2) << "\n";
        return 0;
    };
}

}  // namespace sandlock::cli

// The hidden `shim` subcommand: the egress supervisor process that `create` starts
// (runtime/shim/process.hpp). Not for users; absent from --help.
#include "runtime/cli/cli.hpp"
#include "runtime/shim/process.hpp"

namespace sandlock::cli {

void register_shim(Command& app, Context& ctx) {
    auto state_dir = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("shim", "internal: the egress supervisor of one container");
    sub->group("");  // hidden
    sub->add_option("state_dir", *state_dir, "the container's state directory")->required();
    ctx.handlers[sub] = [state_dir] { return shim::run_shim_main(*state_dir); };
}

}  // namespace sandlock::cli

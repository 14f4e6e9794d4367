#include "runtime/cli/cli.hpp"
#include "runtime/container/lifecycle.hpp"

namespace sandlock::cli {

void register_delete(Command& app, Context& ctx) {
    struct DeleteFlags {
        std::string id;
        bool force = false;
    };
    auto f = std::make_shared<DeleteFlags>();
    auto* sub = app.add_subcommand("delete", "delete a container's resources");
    sub->alias("rm");
    sub->add_flag("-f,--force", f->force, "kill the container first if it is running");
    sub->add_option("id", f->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, f] {
        container::delete_container(ctx.global.store(), f->id, f->force);
        return 0;
    };
}

}  // namespace sandlock::cli

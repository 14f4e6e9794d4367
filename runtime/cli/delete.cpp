#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

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
        container::Container::destroy_by_id(ctx.global.store(), f->id, f->force);
        return 0;
    };
}

}  // namespace sandlock::cli

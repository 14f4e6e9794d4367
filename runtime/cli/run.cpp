#include "runtime/cli/cli.hpp"
#include "runtime/container/run.hpp"

namespace sandlock::cli {

void add_create_flags(Command* sub, container::CreateOptions& o);

void register_run(Command& app, Context& ctx) {
    struct RunFlags {
        container::CreateOptions create;
        bool detach = false;
        bool keep = false;
    };
    auto f = std::make_shared<RunFlags>();
    auto* sub = app.add_subcommand("run", "create and start a container, and wait for it");
    add_create_flags(sub, f->create);
    sub->add_flag("-d,--detach", f->detach, "do not wait for the container");
    sub->add_flag("--keep", f->keep, "keep the container's state after it exits");
    ctx.handlers[sub] = [&ctx, f] {
        ctx.global.prepare_create(f->create);
        return container::run_container(ctx.global.store(), f->create, f->detach, f->keep);
    };
}

}  // namespace sandlock::cli

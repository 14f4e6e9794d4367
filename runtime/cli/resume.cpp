#include "runtime/cgroups/manager.hpp"
#include "runtime/cli/cli.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cli {

void register_resume(Command& app, Context& ctx) {
    auto id = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("resume", "resume all processes of a paused container");
    sub->add_option("id", *id, "container id")->required();
    ctx.handlers[sub] = [&ctx, id] {
        auto store = ctx.global.store();
        container::ContainerState st = store.load(*id);
        // Ask the cgroup itself: it is the truth, whatever status() says.
        auto cg = st.cgroup.is_null() ? nullptr : cgroups::open_manager(st.cgroup);
        if (!container::init_alive(st) || !cg || !cg->frozen()) throw Error("container not paused");
        cg->thaw();
        return 0;
    };
}

}  // namespace sandlock::cli

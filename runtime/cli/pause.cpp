#include "runtime/cgroups/manager.hpp"
#include "runtime/cli/cli.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cli {

void register_pause(Command& app, Context& ctx) {
    auto id = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("pause", "suspend all processes of a container (cgroup freezer)");
    sub->add_option("id", *id, "container id")->required();
    ctx.handlers[sub] = [&ctx, id] {
        auto store = ctx.global.store();
        container::ContainerState st = store.load(*id);
        // Like runc: a created container (parked before execve) can be frozen too.
        auto status = container::current_status(store, st);
        if (status != container::Status::Running && status != container::Status::Created)
            throw Error("container not running");
        if (st.cgroup.is_null()) throw Error("container " + *id + " has no cgroup to freeze");
        cgroups::open_manager(st.cgroup)->freeze();
        return 0;
    };
}

}  // namespace sandlock::cli

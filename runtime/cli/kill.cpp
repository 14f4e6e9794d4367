#include <csignal>

#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"

namespace sandlock::cli {

void register_kill(Command& app, Context& ctx) {
    struct KillFlags {
        std::string id;
        std::string signal = "SIGTERM";
        bool all = false;
    };
    auto f = std::make_shared<KillFlags>();
    auto* sub = app.add_subcommand("kill", "send a signal (default SIGTERM) to a container");
    sub->add_flag("-a,--all", f->all, "signal every process of the container");
    sub->add_option("id", f->id, "container id")->required();
    sub->add_option("signal", f->signal, "signal number or name (9, KILL, SIGKILL)");
    ctx.handlers[sub] = [&ctx, f] {
        int sig = container::parse_signal(f->signal);
        container::Container::load(ctx.global.store(), f->id).kill(sig, f->all);
        return 0;
    };
}

}  // namespace sandlock::cli

#include "runtime/container/run.hpp"

#include "runtime/container/foreground.hpp"
#include "runtime/container/lifecycle.hpp"
#include "runtime/util/log.hpp"
#include "runtime/util/scope.hpp"

namespace sandlock::container {

int run_container(const StateStore& store, CreateOptions opts, bool detach, bool keep) {
    opts.detached = detach;
    if (!detach) {
        // init's parent (stage 1) exits at once: only a subreaper can wait for it.
        become_subreaper();
        block_forwarded_signals();
    }
    CreateResult created = create_container(store, opts);
    ScopeExit remove_on_failure([&] { delete_container(store, opts.id, true); });
    start_container(store, opts.id);
    remove_on_failure.dismiss();
    if (detach) return 0;
    int code = wait_foreground(created.state.pid, std::move(created.console_master));
    if (!keep) {
        try {
            delete_container(store, opts.id, true);
        } catch (const std::exception& e) {
            log::warn(std::string("delete after run: ") + e.what());
        }
    }
    return code;
}

}  // namespace sandlock::container

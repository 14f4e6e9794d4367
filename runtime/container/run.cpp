#include "runtime/container/run.hpp"

#include "runtime/container/foreground.hpp"
#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"
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
    Container container = Container::create(store, opts);
    // From here on the container exists: a run that fails removes it before reporting the
    // failure (a detached one only when it never started; --keep keeps a started one).
    bool started = false;
    ScopeExit remove_on_failure([&] {
        if (started && keep) return;
        try {
            Container::destroy_by_id(store, opts.id, true);
        } catch (const std::exception& e) {
            log::warn(std::string("delete after a failed run: ") + e.what());
        }
    });
    container.start();
    started = true;
    if (detach) {
        remove_on_failure.dismiss();
        return 0;
    }
    const int code = wait_foreground(container.state().pid, container.take_console_master());
    remove_on_failure.dismiss();
    if (keep) return code;
    // The process's exit code is only reported once nothing of the container is left:
    // a container that could not be removed is a failed run.
    try {
        Container::destroy_by_id(store, opts.id, true);
    } catch (const std::exception& e) {
        throw Error(std::string("run: the container exited (status ") + std::to_string(code) +
                    ") but could not be deleted: " + e.what());
    }
    return code;
}

}  // namespace sandlock::container

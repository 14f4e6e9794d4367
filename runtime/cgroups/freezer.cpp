// pause/resume: v1 freezer.state and v2 cgroup.freeze, each waiting until
// the kernel reports the new state (freezing is asynchronous: tasks in
// uninterruptible sleep freeze only when they wake).
#include <chrono>
#include <thread>

#include "runtime/cgroups/cgroupfs.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/cgroups/v2.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cgroups {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFreezeTimeout = std::chrono::seconds(5);

// Calls step until it returns true or the deadline passes; sleeps 1 ms
// growing to 20 ms between tries. Returns whether step succeeded.
template <typename Step>
bool retry_until(Step step) {
    auto deadline = Clock::now() + kFreezeTimeout;
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
        if (step()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
}

bool v2_events_frozen(const std::string& dir, bool& known) {
    auto events = cgroupfs::read_keyed(dir, "cgroup.events");
    auto it = events.find("frozen");
    known = it != events.end();
    return known && it->second == 1;
}

}  // namespace

void v1_set_frozen(const std::string& dir, bool frozen) {
    const char* want = frozen ? "FROZEN" : "THAWED";
    // Rewriting FROZEN on every try nudges tasks that were forked while freezing.
    bool done = retry_until([&] {
        cgroupfs::write(dir, "freezer.state", want);
        return cgroupfs::read(dir, "freezer.state") == want;
    });
    if (done) return;
    if (frozen) {
        cgroupfs::try_write(dir, "freezer.state", "THAWED");
        throw Error("cgroups: unable to freeze " + dir + ": still " + cgroupfs::read(dir, "freezer.state") +
                    " after " + std::to_string(kFreezeTimeout.count()) + "s");
    }
    throw Error("cgroups: unable to thaw " + dir + ": still " + cgroupfs::read(dir, "freezer.state"));
}

void v2_set_frozen(const std::string& dir, bool frozen) {
    cgroupfs::write(dir, "cgroup.freeze", frozen ? "1" : "0");
    bool done = retry_until([&] {
        bool known = false;
        bool now = v2_events_frozen(dir, known);
        return !known || now == frozen;  // no cgroup.events (old kernel): trust the write
    });
    if (done) return;
    if (frozen) {
        cgroupfs::try_write(dir, "cgroup.freeze", "0");
        throw Error("cgroups: unable to freeze " + dir + ": cgroup.events does not report it frozen");
    }
    throw Error("cgroups: unable to thaw " + dir);
}

bool v1_is_frozen(const std::string& dir) { return cgroupfs::read(dir, "freezer.state") == "FROZEN"; }

bool v2_is_frozen(const std::string& dir) {
    bool known = false;
    bool frozen = v2_events_frozen(dir, known);
    if (known) return frozen;
    return cgroupfs::has(dir, "cgroup.freeze") && cgroupfs::read(dir, "cgroup.freeze") == "1";
}

bool is_frozen(const nlohmann::json& cgroup_state) noexcept {
    try {
        if (cgroup_state.is_null()) return false;
        auto m = open_manager(cgroup_state);
        return m->exists() && m->frozen();
    } catch (...) {
        return false;
    }
}

}  // namespace sandlock::cgroups

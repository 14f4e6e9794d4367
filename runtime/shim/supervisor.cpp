#include "runtime/shim/supervisor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "runtime/shim/notify.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::shim {

namespace {

// Threads kept when idle, once started (run() starts with its caller's thread alone);
// more are started whenever every thread is busy and retire after kIdleRetire without work.
constexpr std::size_t kMinThreads = 2;
// Calls served at once, per container. Beyond it a notification is answered EAGAIN at
// once: a container cannot make the shim (outside its cgroup) hold more threads, sockets
// and copies than this, whatever it blocks on.
constexpr std::size_t kMaxInFlight = 32;
constexpr auto kIdleRetire = std::chrono::seconds(10);
// A call the leader has been handling this long (a connect to a dropped destination,
// a full socket buffer) loses it the leader role: a watching thread takes over.
constexpr auto kTakeover = std::chrono::milliseconds(1);
// The watcher keeps watching this long after the last call, so a burst of calls costs
// one wake-up, not one each.
constexpr auto kWatchLinger = std::chrono::milliseconds(100);

struct Listener {
    explicit Listener(UniqueFd f) : fd(std::move(f)) {}
    UniqueFd fd;  // closed when the last job using it is done
};

struct Job {
    std::shared_ptr<Listener> listener;
    seccomp_notif notif;
};

}  // namespace

// Leader/follower with a watcher. One thread at a time, the leader, polls the
// listeners, receives a notification and handles it itself: no hand-off between
// threads on the way, which costs more than the call (two context switches on a
// loaded CPU). So that a call blocking for minutes never keeps the others waiting,
// one idle thread watches the leader while calls are coming: when a single call has
// taken kTakeover, it takes the leader role over, and the old leader joins the idle
// threads when its call ends. The watcher is woken only when calls start after a quiet
// period (kWatchLinger); otherwise it sleeps. run() itself only waits for the end.
struct Supervisor::State : std::enable_shared_from_this<Supervisor::State> {
    State(PolicyPtr p, AuditFn a, bool records_allowed)
        : policy(std::move(p)), records_allowed(records_allowed), audit(std::move(a)) {
        wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake) throw_errno("egress supervisor: eventfd");
        // Without an audit log there is nothing to describe: skip building each Decision.
        if (audit) decided = [this](const Decision& d) { report(d); };
    }

    // Swapped as a whole by a live change (set_policy): a call is judged by the policy it
    // loaded when it started, never by a mix of two.
    std::atomic<std::shared_ptr<const egress::ResolvedPolicy>> policy;
    DecisionFn decided;
    const bool records_allowed;             // see handle_notification
    std::atomic<bool> kernel_layer{false};  // see handle_notification

    std::mutex audit_mutex;
    AuditFn audit;  // cleared when the Supervisor goes away

    std::atomic<std::uint64_t> allowed{0}, denied{0}, continued{0}, errors{0}, busy{0};

    UniqueFd wake;  // eventfd: stop() or add_listener()

    // Guards everything below.
    mutable std::mutex mutex;
    std::condition_variable idle_cv;  // for idle threads: the leader role, calls, the end
    std::condition_variable done_cv;  // for run(): finished
    std::vector<UniqueFd> incoming;
    bool stop_requested = false;
    bool awaiting_first = false;  // no listener yet, but one is coming
    // Until the first listener: create's end of a pipe. Closed with no listener
    // registered, nobody will register one, and the shim ends. The leader's.
    UniqueFd creator;
    bool finished = false;
    std::size_t serving = 0;
    bool leader_taken = false;
    std::uint64_t term = 0;         // changes whenever another thread becomes the leader
    bool leader_in_call = false;    // the leader is handling a call
    std::size_t in_flight = 0;      // calls being served, by every thread
    std::uint64_t calls = 0;        // calls the leaders started
    std::chrono::steady_clock::time_point last_call{};
    bool watching = false;          // an idle thread watches the leader
    std::size_t idle = 0;           // threads waiting (watching or not)
    std::size_t live = 0;           // threads started and not yet retired

    // Only the current leader touches these.
    std::vector<std::shared_ptr<Listener>> active;
    std::vector<pollfd> fds;

    void nudge() const {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof one);
    }

    void report(const Decision& d) {
        std::lock_guard lock(audit_mutex);
        if (!audit) return;
        try {
            audit(d);
        } catch (const std::exception& e) {
            log::warn(std::string("egress supervisor audit: ") + e.what());
        }
    }

    void count(const Reply& r) {
        allowed += r.allowed;
        denied += r.denied;
        // Kernel mode continues allowed IP connects too: those count as allowed only.
        // Supervisor mode performs the calls on non-IP sockets: they count here too.
        if ((r.kind == Reply::Kind::Continue && r.allowed == 0) || r.local) ++continued;
        if (r.internal_error) ++errors;
    }

    // Every received notification gets an answer, whatever goes wrong here: an
    // unanswered one would hang its thread for good.
    void serve(const Job& job) {
        const int fd = job.listener->fd.get();
        Reply reply;
        try {
            const auto judge_by = policy.load();
            reply = handle_notification(fd, job.notif, *judge_by, decided, kernel_layer.load(), records_allowed);
        } catch (const std::exception& e) {
            log::warn(std::string("egress supervisor: ") + e.what());
            reply = Reply::failure(EIO);
            reply.internal_error = true;
        }
        count(reply);
        if (reply.kind == Reply::Kind::Gone) return;
        try {
            notif_respond(fd, to_response(job.notif.id, reply));
        } catch (const std::exception& e) {
            ++errors;
            log::warn(std::string("egress supervisor: ") + e.what());
        }
    }

    // Over the in-flight cap: EAGAIN, answered by the leader without a thread of its own.
    void refuse_busy(const Job& job) {
        ++busy;
        try {
            notif_respond(job.listener->fd.get(), to_response(job.notif.id, Reply::failure(EAGAIN)));
        } catch (const std::exception& e) {
            ++errors;
            log::warn(std::string("egress supervisor: ") + e.what());
        }
    }

    // Takes new listeners in; false (and finished) once there is nothing left to serve.
    // Called by the leader with the lock held.
    bool refresh_listeners() {
        for (auto& fd : incoming) active.push_back(std::make_shared<Listener>(std::move(fd)));
        incoming.clear();
        if (!active.empty()) awaiting_first = false;
        if (stop_requested || (active.empty() && !awaiting_first)) {
            finished = true;
            serving = 0;
            active.clear();
            idle_cv.notify_all();
            done_cv.notify_all();
            return false;
        }
        serving = active.size();
        return true;
    }

    // The leader's turn: polls until one notification is received (or the end).
    // Called without the lock.
    std::optional<Job> receive_one() {
        for (;;) {
            {
                std::lock_guard lock(mutex);
                if (!refresh_listeners()) return std::nullopt;
            }
            fds.assign(1, pollfd{wake.get(), POLLIN, 0});
            for (const auto& l : active) fds.push_back(pollfd{l->fd.get(), POLLIN, 0});
            const bool watch_creator = static_cast<bool>(creator);
            if (watch_creator) fds.push_back(pollfd{creator.get(), POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0) {
                if (errno == EINTR) continue;
                log::warn(std::string("egress supervisor: poll: ") + std::strerror(errno));
                std::lock_guard lock(mutex);
                stop_requested = true;
                continue;
            }
            if (fds[0].revents & POLLIN) {
                std::uint64_t ignored;
                [[maybe_unused]] ssize_t n = ::read(wake.get(), &ignored, sizeof ignored);
            }
            if (watch_creator && fds.back().revents != 0) {
                std::lock_guard lock(mutex);
                if (active.empty() && incoming.empty()) stop_requested = true;
                creator.reset();
            }
            std::optional<Job> job;
            std::vector<std::shared_ptr<Listener>> kept;
            kept.reserve(active.size());
            for (std::size_t i = 0; i < active.size(); ++i) {
                const short rev = fds[i + 1].revents;
                bool keep = true;
                if ((rev & POLLIN) && !job) {
                    try {
                        seccomp_notif notif;
                        if (notif_receive(active[i]->fd.get(), notif)) job = Job{active[i], notif};
                    } catch (const std::exception& e) {
                        // Dropping it fails its processes closed (ENOSYS), never open.
                        log::warn(std::string("egress supervisor: listener dropped: ") + e.what());
                        ++errors;
                        keep = false;
                    }
                } else if (!(rev & POLLIN) && (rev & (POLLHUP | POLLERR | POLLNVAL))) {
                    keep = false;  // no process uses this filter any more
                }
                if (keep) kept.push_back(std::move(active[i]));
            }
            active.swap(kept);
            if (job) return job;
        }
    }

    // Starts one more thread; false when the system refuses. Lock held.
    bool start_thread() {
        ++live;
        try {
            std::thread(work, shared_from_this()).detach();
            return true;
        } catch (const std::system_error& e) {
            --live;
            log::warn(std::string("egress supervisor: cannot start a thread: ") + e.what());
            return false;
        }
    }

    // Waits until this thread may lead (true) or should end (false). Lock held.
    bool wait_for_leader_role(std::unique_lock<std::mutex>& lock) {
        ++idle;
        bool lead = false;
        while (!finished) {
            if (!leader_taken) {
                lead = true;
                break;
            }
            const bool calls_coming =
                leader_in_call || std::chrono::steady_clock::now() - last_call < kWatchLinger;
            if (calls_coming && !watching) {
                if (watch_leader(lock)) {
                    lead = true;
                    break;
                }
                continue;
            }
            if (idle_cv.wait_for(lock, kIdleRetire) == std::cv_status::timeout && leader_taken &&
                live > kMinThreads)
                break;  // retire
        }
        --idle;
        if (lead) {
            leader_taken = true;
            ++term;
            leader_in_call = false;
        }
        return lead;
    }

    // One kTakeover period of watching. True when the leader role is ours now: it was
    // free, or the leader's call has lasted a whole period. Lock held.
    bool watch_leader(std::unique_lock<std::mutex>& lock) {
        watching = true;
        const std::uint64_t seen_term = term, seen_calls = calls;
        const bool was_in_call = leader_in_call;
        const auto deadline = std::chrono::steady_clock::now() + kTakeover;
        while (!finished && leader_taken && idle_cv.wait_until(lock, deadline) != std::cv_status::timeout) {
        }
        watching = false;
        if (finished) return false;
        if (!leader_taken) return true;
        if (was_in_call && leader_in_call && term == seen_term && calls == seen_calls) {
            idle_cv.notify_one();  // someone else watches the new leader
            return true;
        }
        return false;
    }

    // The leader took a call: make sure someone watches it. Lock held.
    void watch_me() {
        leader_in_call = true;
        ++calls;
        last_call = std::chrono::steady_clock::now();
        if (idle == 0)
            start_thread();  // starts out watching
        else if (!watching)
            idle_cv.notify_one();
    }

    static void work(std::shared_ptr<State> self) {
        State& st = *self;
        std::unique_lock lock(st.mutex);
        while (st.wait_for_leader_role(lock)) {
            const std::uint64_t my_term = st.term;
            for (;;) {
                lock.unlock();
                std::optional<Job> job = st.receive_one();
                lock.lock();
                if (!job) break;  // finished
                if (st.in_flight >= kMaxInFlight) {
                    lock.unlock();
                    st.refuse_busy(*job);
                    job->listener.reset();
                    lock.lock();
                    continue;
                }
                // (No takeover while polling: only a leader in a call is taken over.)
                ++st.in_flight;
                st.watch_me();
                lock.unlock();
                st.serve(*job);
                job->listener.reset();  // outside the lock: may close the listener
                lock.lock();
                --st.in_flight;
                if (st.term != my_term) break;  // taken over meanwhile: now an idle thread
                st.leader_in_call = false;
            }
            if (st.term == my_term) st.leader_taken = false;
        }
        --st.live;
        st.idle_cv.notify_all();
    }
};

Supervisor::Supervisor(PolicyPtr policy, AuditFn audit, bool records_allowed)
    : state_(std::make_shared<State>(std::move(policy), std::move(audit), records_allowed)) {}

Supervisor::Supervisor(egress::ResolvedPolicy policy, AuditFn audit, bool records_allowed)
    : Supervisor(std::make_shared<const egress::ResolvedPolicy>(std::move(policy)), std::move(audit), records_allowed) {}

void Supervisor::set_kernel_layer() { state_->kernel_layer = true; }

void Supervisor::set_policy(PolicyPtr policy) { state_->policy.store(std::move(policy)); }

Supervisor::~Supervisor() {
    stop();
    {
        std::lock_guard lock(state_->audit_mutex);
        state_->audit = nullptr;
    }
}

void Supervisor::add_listener(UniqueFd listener) {
    if (!listener) throw Error("egress supervisor: invalid seccomp listener");
    // A hint (6.6+): wake the receiver on the notifying CPU. Harmless where missing.
    notif_set_sync_wakeup(listener.get());
    std::lock_guard lock(state_->mutex);
    if (state_->finished) throw Error("egress supervisor: no longer serving, listener refused");
    state_->incoming.push_back(std::move(listener));
    state_->nudge();
}

void Supervisor::await_first_listener(UniqueFd creator) {
    std::lock_guard lock(state_->mutex);
    state_->awaiting_first = true;
    state_->creator = std::move(creator);
}

void Supervisor::stop() {
    std::lock_guard lock(state_->mutex);
    state_->stop_requested = true;
    state_->nudge();
}

Counters Supervisor::counters() const {
    Counters c;
    c.allowed = state_->allowed.load();
    c.denied = state_->denied.load();
    c.continued = state_->continued.load();
    c.errors = state_->errors.load();
    c.busy = state_->busy.load();
    return c;
}

size_t Supervisor::listener_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->serving + state_->incoming.size();
}

void Supervisor::run() {
    const std::shared_ptr<State> keep = state_;  // safe even if stop() races with ~Supervisor
    State& st = *keep;
    std::unique_lock lock(st.mutex);
    if (st.incoming.empty() && st.active.empty() && !st.awaiting_first) {
        st.finished = true;
        return;
    }
    st.finished = false;
    // This thread leads first; the next starts with the first call (watch_me), so that a
    // shim whose container never connects starts none.
    ++st.live;
    lock.unlock();
    State::work(keep);
    lock.lock();
    st.done_cv.wait(lock, [&] { return st.finished; });  // retired before the end
}

}  // namespace sandlock::shim

#include "runtime/shim/supervisor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "runtime/shim/notify.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::shim {

namespace {

// Workers kept when idle; more are started whenever every worker is busy and retire
// after kIdleRetire without work.
constexpr std::size_t kMinWorkers = 2;
constexpr auto kIdleRetire = std::chrono::seconds(10);

struct Listener {
    explicit Listener(UniqueFd f) : fd(std::move(f)) {}
    UniqueFd fd;  // closed when the last job using it is done
};

struct Job {
    std::shared_ptr<Listener> listener;
    seccomp_notif notif;
};

}  // namespace

struct Supervisor::State : std::enable_shared_from_this<Supervisor::State> {
    State(egress::ResolvedPolicy p, AuditFn a) : policy(std::move(p)), audit(std::move(a)) {
        wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake) throw_errno("egress supervisor: eventfd");
        decided = [this](const Decision& d) { report(d); };
    }

    const egress::ResolvedPolicy policy;
    DecisionFn decided;

    std::mutex audit_mutex;
    AuditFn audit;  // cleared when the Supervisor goes away

    std::atomic<std::uint64_t> allowed{0}, denied{0}, continued{0}, errors{0};

    UniqueFd wake;  // eventfd: stop() or add_listener()
    mutable std::mutex mutex;
    std::vector<UniqueFd> incoming;
    bool stop_requested = false;
    bool finished = false;
    std::size_t serving = 0;

    std::mutex pool_mutex;
    std::condition_variable pool_cv;
    std::deque<Job> jobs;
    std::size_t waiting = 0;  // workers blocked on pool_cv
    std::size_t live = 0;     // workers started and not yet retired
    bool closing = false;

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
            log::warn(std::string("egress audit: ") + e.what());
        }
    }

    void count(const Reply& r) {
        allowed += r.allowed;
        denied += r.denied;
        if (r.kind == Reply::Kind::Continue) ++continued;
        if (r.internal_error) ++errors;
    }

    // Every received notification gets an answer, whatever goes wrong here: an
    // unanswered one would hang its thread for good.
    void serve(const Job& job) {
        const int fd = job.listener->fd.get();
        Reply reply;
        try {
            reply = handle_notification(fd, job.notif, policy, decided);
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

    static void work(std::shared_ptr<State> self) {
        State& st = *self;
        std::unique_lock lock(st.pool_mutex);
        for (;;) {
            if (!st.jobs.empty()) {
                Job job = std::move(st.jobs.front());
                st.jobs.pop_front();
                lock.unlock();
                st.serve(job);
                job.listener.reset();  // outside the lock: may close the listener
                lock.lock();
                continue;
            }
            if (st.closing) break;
            ++st.waiting;
            const bool woken =
                st.pool_cv.wait_for(lock, kIdleRetire, [&] { return !st.jobs.empty() || st.closing; });
            --st.waiting;
            if (!woken && st.live > kMinWorkers) break;
        }
        --st.live;
    }

    void submit(Job job) {
        std::unique_lock lock(pool_mutex);
        jobs.push_back(std::move(job));
        if (waiting >= jobs.size()) {
            pool_cv.notify_one();
            return;
        }
        ++live;
        lock.unlock();
        try {
            std::thread(work, shared_from_this()).detach();
        } catch (const std::system_error& e) {
            // The job stays queued for the next free worker.
            lock.lock();
            --live;
            log::warn(std::string("egress supervisor: cannot start a worker: ") + e.what());
        }
    }
};

Supervisor::Supervisor(egress::ResolvedPolicy policy, AuditFn audit)
    : state_(std::make_shared<State>(std::move(policy), std::move(audit))) {}

Supervisor::~Supervisor() {
    stop();
    {
        std::lock_guard lock(state_->audit_mutex);
        state_->audit = nullptr;
    }
    std::lock_guard lock(state_->pool_mutex);
    state_->closing = true;
    state_->pool_cv.notify_all();
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
    return c;
}

size_t Supervisor::listener_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->serving + state_->incoming.size();
}

void Supervisor::run() {
    const std::shared_ptr<State> keep = state_;  // safe even if stop() races with ~Supervisor
    State& st = *keep;
    {
        std::lock_guard lock(st.mutex);
        st.finished = false;
    }
    std::vector<std::shared_ptr<Listener>> active;
    std::vector<pollfd> fds;
    for (;;) {
        {
            std::lock_guard lock(st.mutex);
            for (auto& fd : st.incoming) active.push_back(std::make_shared<Listener>(std::move(fd)));
            st.incoming.clear();
            if (st.stop_requested || active.empty()) {
                st.finished = true;
                st.serving = 0;
                return;
            }
            st.serving = active.size();
        }

        fds.assign(1, pollfd{st.wake.get(), POLLIN, 0});
        for (const auto& l : active) fds.push_back(pollfd{l->fd.get(), POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("egress supervisor: poll");
        }
        if (fds[0].revents & POLLIN) {
            std::uint64_t ignored;
            [[maybe_unused]] ssize_t n = ::read(st.wake.get(), &ignored, sizeof ignored);
        }

        std::vector<std::shared_ptr<Listener>> kept;
        kept.reserve(active.size());
        for (std::size_t i = 0; i < active.size(); ++i) {
            const short rev = fds[i + 1].revents;
            bool keep = true;
            if (rev & POLLIN) {
                try {
                    seccomp_notif notif;
                    if (notif_receive(active[i]->fd.get(), notif)) st.submit(Job{active[i], notif});
                } catch (const std::exception& e) {
                    // Dropping it fails its processes closed (ENOSYS), never open.
                    log::warn(std::string("egress supervisor: listener dropped: ") + e.what());
                    ++st.errors;
                    keep = false;
                }
            } else if (rev & (POLLHUP | POLLERR | POLLNVAL)) {
                keep = false;  // no process uses this filter any more
            }
            if (keep) kept.push_back(std::move(active[i]));
        }
        active.swap(kept);
    }
}

}  // namespace sandlock::shim

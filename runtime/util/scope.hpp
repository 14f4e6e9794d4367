// Runs a cleanup on scope exit unless dismissed: undo steps of a half-done create.
#pragma once

#include <functional>
#include <utility>

namespace sandlock {

class ScopeExit {
public:
    explicit ScopeExit(std::function<void()> fn) : fn_(std::move(fn)) {}
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;
    ~ScopeExit() {
        if (fn_) {
            try {
                fn_();
            } catch (...) {
                // Cleanup is best effort; the original error is what the user needs.
            }
        }
    }
    void dismiss() { fn_ = nullptr; }

private:
    std::function<void()> fn_;
};

}  // namespace sandlock

// `events`: runc's container event stream. --stats prints one
// {"type":"stats","id":ID,"data":{...}} line and exits; otherwise a stats
// line every --interval (Go duration, default 5s) and an {"type":"oom"} line
// when the cgroup's OOM-kill counter grows, until the container stops.
#include <chrono>
#include <iostream>
#include <thread>

#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cli {

namespace {

// "5s", "100ms", "1m30s", "2h": Go's time.ParseDuration for the units runc users type.
std::chrono::milliseconds parse_duration(const std::string& text) {
    auto bad = [&] { return Error("invalid duration \"" + text + "\""); };
    double total_ms = 0;
    size_t i = 0;
    if (text.empty()) throw bad();
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
        if (i == start) throw bad();
        double n = std::stod(text.substr(start, i - start));
        size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        std::string unit = text.substr(unit_start, i - unit_start);
        if (unit == "ms") total_ms += n;
        else if (unit == "s") total_ms += n * 1000;
        else if (unit == "m") total_ms += n * 60000;
        else if (unit == "h") total_ms += n * 3600000;
        else if (unit == "us" || unit == "µs") total_ms += n / 1000;
        else if (unit == "ns") total_ms += n / 1e6;
        else throw bad();
    }
    if (total_ms <= 0) throw Error("duration must be greater than 0");
    return std::chrono::milliseconds(static_cast<long long>(total_ms < 1 ? 1 : total_ms));
}

uint64_t oom_kills(const nlohmann::json& stats) {
    const auto& raw = stats["memory"].value("raw", nlohmann::json::object());
    return raw.value("oom_kill", uint64_t{0});
}

void print_event(const char* type, const std::string& id, const nlohmann::json* data) {
    nlohmann::ordered_json e;
    e["type"] = type;
    e["id"] = id;
    if (data) e["data"] = *data;
    std::cout << e.dump() << std::endl;  // one line, flushed: callers read it as a stream
}

}  // namespace

void register_events(Command& app, Context& ctx) {
    struct EventsFlags {
        std::string id;
        bool stats = false;
        std::string interval = "5s";
    };
    auto f = std::make_shared<EventsFlags>();
    auto* sub = app.add_subcommand("events", "display container events and resource usage");
    sub->add_flag("--stats", f->stats, "print the container's stats once and exit");
    sub->add_option("--interval", f->interval, "stats collection interval (default 5s)");
    sub->add_option("id", f->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, f] {
        auto period = parse_duration(f->interval);
        const auto watched = container::Container::load(ctx.global.store(), f->id);
        nlohmann::json stats = watched.stats();
        if (f->stats) {
            print_event("stats", f->id, &stats);
            return 0;
        }
        uint64_t ooms = oom_kills(stats);
        for (;;) {
            print_event("stats", f->id, &stats);
            std::this_thread::sleep_for(period);
            if (!watched.still_running()) return 0;
            stats = watched.stats();
            if (uint64_t now = oom_kills(stats); now > ooms) {
                ooms = now;
                print_event("oom", f->id, nullptr);
            }
        }
    };
}

}  // namespace sandlock::cli

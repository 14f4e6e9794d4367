// sandlock-systemd: the D-Bus client of the systemd cgroup driver (--systemd-cgroup),
// a program of its own because Debian ships libsystemd (sd-bus) only as a shared
// library while sandlock-runc is linked statically (start-up time and memory: see
// bench/RESULTS.md). runtime/cgroups/systemd.cpp runs it; nothing else should.
//
//   sandlock-systemd start UNIT [NAME=TYPE:VALUE]...   StartTransientUnit(UNIT, "fail"),
//                                                     then waits for the job to finish
//   sandlock-systemd set UNIT NAME=TYPE:VALUE...      SetUnitProperties(UNIT, runtime)
//   sandlock-systemd stop UNIT                        StopUnit(UNIT, "replace") and waits;
//                                                     a unit that is not loaded is fine
// TYPE is s (string), b (true/false), t (uint64), u (uint32) or au (comma-separated
// uint32s), e.g. PIDs=au:1234 TasksMax=t:100 Delegate=b:true.
// Exit 0 on success; 1 with one line on stderr otherwise.
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kObject = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
// How long a job may take (runc waits 30 s as well).
constexpr uint64_t kJobTimeoutUsec = 30'000'000;

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(int r, const std::string& what) {
    if (r < 0) throw Failure(what + ": " + std::strerror(-r));
}

// RAII for the sd-bus objects.
struct Bus {
    sd_bus* bus = nullptr;
    ~Bus() { sd_bus_flush_close_unref(bus); }
};
struct Message {
    sd_bus_message* m = nullptr;
    ~Message() { sd_bus_message_unref(m); }
};
struct BusError {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    ~BusError() { sd_bus_error_free(&e); }
};

// systemd's message for a failed call.
std::string reason(const BusError& error) { return error.e.message ? error.e.message : "failed"; }
struct Slot {
    sd_bus_slot* s = nullptr;
    ~Slot() { sd_bus_slot_unref(s); }
};

// As systemctl does as root: systemd's private socket first (no dbus-daemon needed),
// then the system bus.
void connect(Bus& b) {
    if (::geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0) {
        check(sd_bus_new(&b.bus), "sd_bus_new");
        check(sd_bus_set_address(b.bus, "unix:path=/run/systemd/private"), "sd_bus_set_address");
        if (sd_bus_start(b.bus) >= 0) return;
        sd_bus_flush_close_unref(b.bus);
        b.bus = nullptr;
    }
    check(sd_bus_open_system(&b.bus), "connecting to the systemd system bus");
}

// Watches JobRemoved for one job path; the path is known only after the call returns,
// so the signal may arrive before: remember every finished job until then.
struct JobWatch {
    std::string path;
    std::vector<std::pair<std::string, std::string>> finished;  // (job, result)
    bool done = false;
    std::string result;
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* w = static_cast<JobWatch*>(userdata);
    uint32_t id;
    const char *job, *unit, *result;
    if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0) return 0;
    w->finished.emplace_back(job, result);
    if (!w->path.empty() && w->path == job) {
        w->done = true;
        w->result = result;
    }
    return 0;
}

void subscribe(sd_bus* bus, Slot& slot, JobWatch& watch) {
    check(sd_bus_match_signal(bus, &slot.s, kService, kObject, kManager, "JobRemoved",
                              on_job_removed, &watch),
          "watching systemd's jobs");
    BusError error;
    // A private connection gets the manager's signals only once subscribed.
    if (sd_bus_call_method(bus, kService, kObject, kManager, "Subscribe", &error.e, nullptr, "") < 0)
        throw Failure(std::string("systemd Subscribe: ") + reason(error));
}

uint64_t now_usec() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

void wait_for_job(sd_bus* bus, JobWatch& watch, const std::string& unit) {
    for (auto& [job, result] : watch.finished)
        if (job == watch.path) {
            watch.done = true;
            watch.result = result;
        }
    const uint64_t deadline = now_usec() + kJobTimeoutUsec;
    while (!watch.done) {
        int r = sd_bus_process(bus, nullptr);
        check(r, "reading from systemd");
        if (r > 0) continue;
        const uint64_t now = now_usec();
        if (now >= deadline) throw Failure("timed out waiting for systemd's job on " + unit);
        check(sd_bus_wait(bus, deadline - now), "waiting for systemd");
    }
    if (watch.result != "done")
        throw Failure("systemd's job on " + unit + " ended \"" + watch.result + "\"");
}

std::vector<uint32_t> parse_u32_list(const std::string& text) {
    std::vector<uint32_t> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        size_t used = 0;
        unsigned long v = std::stoul(item, &used);
        if (used != item.size() || v > UINT32_MAX) throw std::invalid_argument(item);
        out.push_back(static_cast<uint32_t>(v));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

uint64_t parse_u64(const std::string& text) {
    size_t used = 0;
    if (text.empty() || text[0] == '-') throw std::invalid_argument(text);
    unsigned long long v = std::stoull(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return v;
}

// NAME=TYPE:VALUE as one (sv) entry of the properties array.
void append_property(sd_bus_message* m, const std::string& arg) {
    size_t eq = arg.find('='), colon = arg.find(':', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || colon == std::string::npos || eq == 0)
        throw Failure("bad property \"" + arg + "\": expected NAME=TYPE:VALUE");
    const std::string name = arg.substr(0, eq), type = arg.substr(eq + 1, colon - eq - 1),
                      value = arg.substr(colon + 1);
    int r = -EINVAL;
    try {
        if (type == "s") {
            r = sd_bus_message_append(m, "(sv)", name.c_str(), "s", value.c_str());
        } else if (type == "b") {
            if (value != "true" && value != "false") throw std::invalid_argument(value);
            r = sd_bus_message_append(m, "(sv)", name.c_str(), "b", value == "true" ? 1 : 0);
        } else if (type == "t") {
            r = sd_bus_message_append(m, "(sv)", name.c_str(), "t", parse_u64(value));
        } else if (type == "u") {
            uint64_t v = parse_u64(value);
            if (v > UINT32_MAX) throw std::invalid_argument(value);
            r = sd_bus_message_append(m, "(sv)", name.c_str(), "u", static_cast<uint32_t>(v));
        } else if (type == "x" || type == "i") {
            size_t used = 0;
            long long v = std::stoll(value, &used);
            if (used != value.size()) throw std::invalid_argument(value);
            if (type == "x") {
                r = sd_bus_message_append(m, "(sv)", name.c_str(), "x", static_cast<int64_t>(v));
            } else {
                if (v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(value);
                r = sd_bus_message_append(m, "(sv)", name.c_str(), "i", static_cast<int32_t>(v));
            }
        } else if (type == "au") {
            std::vector<uint32_t> items = parse_u32_list(value);
            check(sd_bus_message_open_container(m, 'r', "sv"), "building the message");
            check(sd_bus_message_append(m, "s", name.c_str()), "building the message");
            check(sd_bus_message_open_container(m, 'v', "au"), "building the message");
            check(sd_bus_message_append_array(m, 'u', items.data(), items.size() * sizeof(uint32_t)),
                  "building the message");
            check(sd_bus_message_close_container(m), "building the message");
            r = sd_bus_message_close_container(m);
        } else {
            throw Failure("bad property \"" + arg + "\": unknown type \"" + type + "\"");
        }
    } catch (const std::logic_error&) {
        throw Failure("bad property \"" + arg + "\": bad " + type + " value");
    }
    check(r, "property " + name);
}

// The a(sv) array of unit properties.
void append_properties(sd_bus_message* m, const std::vector<std::string>& properties) {
    check(sd_bus_message_open_container(m, 'a', "(sv)"), "building the message");
    for (const auto& p : properties) append_property(m, p);
    check(sd_bus_message_close_container(m), "building the message");
}

// The job a method call queued (its reply's object path), until it is finished.
void await_job(sd_bus* bus, sd_bus_message* reply, JobWatch& watch, const std::string& unit) {
    const char* job = nullptr;
    check(sd_bus_message_read(reply, "o", &job), "reading systemd's reply");
    watch.path = job;
    wait_for_job(bus, watch, unit);
}

void start_unit(const std::string& unit, const std::vector<std::string>& properties) {
    Bus b;
    connect(b);
    JobWatch watch;
    Slot slot;
    subscribe(b.bus, slot, watch);

    Message m;
    check(sd_bus_message_new_method_call(b.bus, &m.m, kService, kObject, kManager, "StartTransientUnit"),
          "building the message");
    check(sd_bus_message_append(m.m, "ss", unit.c_str(), "fail"), "building the message");
    append_properties(m.m, properties);
    check(sd_bus_message_append(m.m, "a(sa(sv))", 0), "building the message");

    BusError error;
    Message reply;
    if (sd_bus_call(b.bus, m.m, kJobTimeoutUsec, &error.e, &reply.m) < 0)
        throw Failure("systemd could not start " + unit + ": " + reason(error));
    await_job(b.bus, reply.m, watch, unit);
}

void set_properties(const std::string& unit, const std::vector<std::string>& properties) {
    Bus b;
    connect(b);
    Message m;
    check(sd_bus_message_new_method_call(b.bus, &m.m, kService, kObject, kManager, "SetUnitProperties"),
          "building the message");
    // runtime: the values last until the unit goes, like the unit itself.
    check(sd_bus_message_append(m.m, "sb", unit.c_str(), 1), "building the message");
    append_properties(m.m, properties);
    BusError error;
    if (sd_bus_call(b.bus, m.m, kJobTimeoutUsec, &error.e, nullptr) < 0)
        throw Failure("systemd could not set properties of " + unit + ": " + reason(error));
}

void stop_unit(const std::string& unit) {
    Bus b;
    connect(b);
    JobWatch watch;
    Slot slot;
    subscribe(b.bus, slot, watch);

    BusError error;
    Message reply;
    if (sd_bus_call_method(b.bus, kService, kObject, kManager, "StopUnit", &error.e, &reply.m, "ss",
                           unit.c_str(), "replace") < 0) {
        // Gone already (its last process exited and systemd collected it): fine.
        if (sd_bus_error_has_name(&error.e, "org.freedesktop.systemd1.NoSuchUnit")) return;
        throw Failure("systemd could not stop " + unit + ": " + reason(error));
    }
    await_job(b.bus, reply.m, watch, unit);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.size() >= 2 && args[0] == "start") {
            start_unit(args[1], {args.begin() + 2, args.end()});
        } else if (args.size() >= 3 && args[0] == "set") {
            set_properties(args[1], {args.begin() + 2, args.end()});
        } else if (args.size() == 2 && args[0] == "stop") {
            stop_unit(args[1]);
        } else {
            std::fputs("usage: sandlock-systemd start UNIT [NAME=TYPE:VALUE]... | set UNIT "
                       "NAME=TYPE:VALUE... | stop UNIT "
                       "(run by sandlock-runc --systemd-cgroup)\n",
                       stderr);
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}

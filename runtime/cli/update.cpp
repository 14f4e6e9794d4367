// `update`: new limits for a running container, from --resources (a
// linux.resources JSON object, "-" for stdin) and/or runc's flags, which
// override the file's values. Devices are never changed by update (as runc).
// Like runc, which keeps them in its state, the new values are merged into
// the container's saved config (<root>/<id>/config.json), so that later
// commands see the current limits.
#include <iostream>
#include <iterator>

#include "runtime/cgroups/resources.hpp"
#include "runtime/cli/cli.hpp"
#include "runtime/container/container.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cli {

namespace {

struct UpdateFlags {
    std::string id, resources;
    std::string memory, memory_swap, memory_reservation, kernel_memory, kernel_memory_tcp;
    std::string cpuset_cpus, cpuset_mems;
    std::optional<uint64_t> cpu_period, cpu_share, cpu_rt_period;
    std::optional<int64_t> cpu_quota, cpu_rt_runtime, pids_limit;
    std::optional<uint16_t> blkio_weight;
    std::string l3_cache_schema, mem_bw_schema;
};

nlohmann::json read_resources(const std::string& source) {
    std::string text;
    if (source == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        text = fs::read_file(source);
    }
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error("update: --resources " + (source == "-" ? std::string("(stdin)") : source) +
                    ": invalid JSON: " + e.what());
    }
}

// The flags, merged over the --resources object (flags win).
nlohmann::json merged_resources(const UpdateFlags& f) {
    nlohmann::json r = f.resources.empty() ? nlohmann::json::object() : read_resources(f.resources);
    if (!r.is_object()) throw Error("update: --resources must hold a JSON object");
    auto memory_flag = [&](const std::string& value, const char* key) {
        if (!value.empty()) r["memory"][key] = cgroups::parse_memory_size(value);
    };
    memory_flag(f.memory, "limit");
    memory_flag(f.memory_swap, "swap");
    memory_flag(f.memory_reservation, "reservation");
    memory_flag(f.kernel_memory, "kernel");
    memory_flag(f.kernel_memory_tcp, "kernelTCP");
    if (f.cpu_period) r["cpu"]["period"] = *f.cpu_period;
    if (f.cpu_quota) r["cpu"]["quota"] = *f.cpu_quota;
    if (f.cpu_share) r["cpu"]["shares"] = *f.cpu_share;
    if (f.cpu_rt_period) r["cpu"]["realtimePeriod"] = *f.cpu_rt_period;
    if (f.cpu_rt_runtime) r["cpu"]["realtimeRuntime"] = *f.cpu_rt_runtime;
    if (!f.cpuset_cpus.empty()) r["cpu"]["cpus"] = f.cpuset_cpus;
    if (!f.cpuset_mems.empty()) r["cpu"]["mems"] = f.cpuset_mems;
    if (f.pids_limit) r["pids"]["limit"] = *f.pids_limit;
    if (f.blkio_weight) r["blockIO"]["weight"] = *f.blkio_weight;
    return r;
}

}  // namespace

void register_update(Command& app, Context& ctx) {
    auto f = std::make_shared<UpdateFlags>();
    auto* sub = app.add_subcommand("update", "update a container's resource limits");
    sub->add_option("-r,--resources", f->resources, "linux.resources JSON file, or - for stdin");
    sub->add_option("--memory", f->memory, "memory limit (e.g. 512m; -1 = unlimited)");
    sub->add_option("--memory-swap", f->memory_swap, "memory plus swap limit (-1 = unlimited)");
    sub->add_option("--memory-reservation", f->memory_reservation, "memory soft limit");
    sub->add_option("--kernel-memory", f->kernel_memory, "kernel memory limit (v1; refused where the kernel offers none)");
    sub->add_option("--kernel-memory-tcp", f->kernel_memory_tcp, "kernel TCP buffer limit");
    sub->add_option("--cpu-period", f->cpu_period, "CFS period in microseconds");
    sub->add_option("--cpu-quota", f->cpu_quota, "CFS quota in microseconds (-1 = unlimited)");
    sub->add_option("--cpu-share", f->cpu_share, "CPU shares (relative weight)");
    sub->add_option("--cpu-rt-period", f->cpu_rt_period, "realtime period in microseconds");
    sub->add_option("--cpu-rt-runtime", f->cpu_rt_runtime, "realtime runtime in microseconds");
    sub->add_option("--cpuset-cpus", f->cpuset_cpus, "CPUs allowed (e.g. 0-3,5)");
    sub->add_option("--cpuset-mems", f->cpuset_mems, "memory nodes allowed");
    sub->add_option("--pids-limit", f->pids_limit, "maximum number of processes (-1 = unlimited)");
    sub->add_option("--blkio-weight", f->blkio_weight, "block I/O weight, 10 to 1000");
    sub->add_option("--l3-cache-schema", f->l3_cache_schema, "Intel RDT (not supported)");
    sub->add_option("--mem-bw-schema", f->mem_bw_schema, "Intel RDT (not supported)");
    sub->add_option("id", f->id, "container id")->required();
    ctx.handlers[sub] = [&ctx, f] {
        if (!f->l3_cache_schema.empty() || !f->mem_bw_schema.empty())
            throw Error("update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
        container::Container::load(ctx.global.store(), f->id).update(merged_resources(*f));
        return 0;
    };
}

}  // namespace sandlock::cli

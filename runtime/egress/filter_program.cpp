// The egress filter's two programs, generated at build time by libseccomp (filter.hpp):
// $(BUILD)/gen/egress_filter.inc, written by runtime/egress/filter_gen_main.cpp. Not part
// of libsandlock.a (the generator links that library): the programs link it explicitly.
#include <iterator>

#include "runtime/egress/filter.hpp"

namespace sandlock::egress {
namespace {

#include "egress_filter.inc"  // kEgressFilterConnectOnly, kEgressFilterEverySend

}  // namespace

std::vector<sock_filter> egress_filter_bpf(bool connect_only) {
    if (connect_only) return {std::begin(kEgressFilterConnectOnly), std::end(kEgressFilterConnectOnly)};
    return {std::begin(kEgressFilterEverySend), std::end(kEgressFilterEverySend)};
}

UniqueFd install_egress_filter(bool connect_only) { return install_egress_filter(egress_filter_bpf(connect_only)); }

}  // namespace sandlock::egress

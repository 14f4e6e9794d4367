#include "runtime/egress/dns.hpp"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "runtime/util/error.hpp"

namespace sandlock::egress {

namespace {

// A resolver state of our own: the refresh thread must not share libc's global one.
class DnsClient {
public:
    DnsClient() {
        std::memset(&state_, 0, sizeof state_);
        if (res_ninit(&state_) != 0) throw Error("dns: cannot read the resolver configuration");
    }
    ~DnsClient() { res_nclose(&state_); }
    DnsClient(const DnsClient&) = delete;
    DnsClient& operator=(const DnsClient&) = delete;

    // The answer message for (name, type), or empty for a name or type with no records.
    std::vector<unsigned char> query(const std::string& name, int type) {
        std::vector<unsigned char> buf(64 * 1024);
        const int n = res_nquery(&state_, name.c_str(), ns_c_in, type, buf.data(), static_cast<int>(buf.size()));
        if (n < 0) {
            // h_errno of this state: no such name, or no data of this type, is an answer
            if (state_.res_h_errno == HOST_NOT_FOUND || state_.res_h_errno == NO_DATA) return {};
            throw Error("dns: no answer for " + name + " (" + hstrerror(state_.res_h_errno) + ")");
        }
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }

private:
    struct __res_state state_;
};

}  // namespace

DnsAnswer parse_answer(const unsigned char* message, int length, int type) {
    ns_msg msg;
    if (ns_initparse(message, length, &msg) != 0) throw Error("dns: malformed answer");
    DnsAnswer out;
    const int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count; ++i) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) throw Error("dns: malformed answer record");
        if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in) continue;  // CNAMEs and the like
        IpAddr ip;
        if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
            in_addr a;
            std::memcpy(&a, ns_rr_rdata(rr), 4);
            ip = IpAddr::from(a);
        } else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
            in6_addr a;
            std::memcpy(&a, ns_rr_rdata(rr), 16);
            ip = normalize(IpAddr::from(a));
        } else {
            continue;
        }
        const std::uint32_t ttl = ns_rr_ttl(rr);
        out.ttl_s = out.addresses.empty() ? ttl : std::min(out.ttl_s, ttl);
        if (std::find(out.addresses.begin(), out.addresses.end(), ip) == out.addresses.end()) out.addresses.push_back(ip);
    }
    return out;
}

DnsAnswer query_addresses(const std::string& name) {
    DnsClient resolver;
    DnsAnswer out;
    // One family failing (a server that refuses AAAA for a name it only has an A for) is
    // not the name failing: only both are an error.
    std::optional<Error> failure;
    int failed = 0;
    for (const int type : {ns_t_a, ns_t_aaaa}) {
        std::vector<unsigned char> message;
        try {
            message = resolver.query(name, type);
        } catch (const Error& e) {
            ++failed;
            failure = e;
            continue;
        }
        if (message.empty()) continue;
        const DnsAnswer part = parse_answer(message.data(), static_cast<int>(message.size()), type);
        if (part.addresses.empty()) continue;
        out.ttl_s = out.addresses.empty() ? part.ttl_s : std::min(out.ttl_s, part.ttl_s);
        for (const auto& ip : part.addresses)
            if (std::find(out.addresses.begin(), out.addresses.end(), ip) == out.addresses.end()) out.addresses.push_back(ip);
    }
    if (failed == 2 || (failure && out.addresses.empty())) throw *failure;
    return out;
}

}  // namespace sandlock::egress

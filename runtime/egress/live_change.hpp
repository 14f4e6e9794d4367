// A live change of a running container's allow list (`sandlock-runc egress ID --allow
// RULE --revoke RULE`): the new resolved policy, computed from the current one. The shim
// applies it (shim/process.cpp: the kernel's maps, its own verdicts, the container's
// /etc/hosts) and keeps it in egress.json.
//
// What a change may do: add rules inside the operator's ceiling recorded at create, and
// remove rules the policy has (as written, ports in any order). The names the policy
// already had keep the addresses they were resolved to; only a new name is looked up.
// Only an allow-list policy can change: a deny list or an open policy cannot (widening
// a deny list is not what an allowlist operator asks for, and there is no ceiling to
// hold it to).
#pragma once

#include <string>
#include <vector>

#include "runtime/egress/policy.hpp"

namespace sandlock::egress {

struct PolicyChange {
    std::vector<Rule> allow;
    std::vector<Rule> revoke;

    bool empty() const { return allow.empty() && revoke.empty(); }
};

// Parses the rule texts. Throws sandlock::Error `--allow: rule "x": reason`.
PolicyChange parse_change(const std::vector<std::string>& allow, const std::vector<std::string>& revoke);

// The policy after `change`: revokes first, then additions (a rule both revoked and
// allowed stays). Throws sandlock::Error, one line each:
//   this container's policy is a deny list (io.sandlock.network.deny): only an allow list can change live
//   --revoke: rule "x" is not in the policy (`sandlock-runc egress ID` lists its rules)
//   --allow: rule "x" is outside the operator's ceiling
//   --allow: cannot resolve host "x": reason
ResolvedPolicy apply_change(const ResolvedPolicy& current, const PolicyChange& change, Resolver& resolver);

// The same policy with names resolved anew (the shim's refresh): each name in `names`
// gets those addresses, the others keep theirs. A name with no address left admits
// nothing. Throws sandlock::Error as apply_change.
ResolvedPolicy with_names(const ResolvedPolicy& current, const std::vector<HostEntry>& names);

}  // namespace sandlock::egress

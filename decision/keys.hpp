// Normalisation of the keys we count by: the same mailbox, sender or client network must map to
// one key however Postfix (or an attacker) spells it. Results go into caller-owned buffers so the
// request path reuses their capacity.
#pragma once

#include <string>
#include <string_view>

namespace rcptguard::decision {

/// ASCII case-folded, with the address extension removed like Postfix's recipient_delimiter:
/// the local part is cut at the first of `delimiters`, unless that would leave it empty (and,
/// for '-', not in Postfix's "owner-" / "-request" list names). "<>" and "" become "".
void normalise_address(std::string_view address, std::string_view delimiters, std::string& out);

/// IPv4 as is; IPv6 masked to `ipv6_prefix` bits and written "net::/prefix"; an IPv4-mapped
/// IPv6 address becomes its IPv4 form. Anything unparsable ("unknown") is only case-folded.
void normalise_client(std::string_view address, unsigned ipv6_prefix, std::string& out);

}  // namespace rcptguard::decision

// Incremental parser for the policy request framing: name=value lines, each ended by LF
// (a trailing CR is tolerated), the request closed by an empty line. Bad input is a typed
// error value, never an exception; limits are checked before bytes are buffered. Values are
// never an error: a number that is not a decimal in range is kept as 0, "unknown".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/limits.hpp"
#include "protocol/request.hpp"

namespace rcptguard::protocol {

enum class parse_error : std::uint8_t {
  none,
  line_too_long,        ///< a line exceeded limits::max_line before its LF
  too_many_attributes,  ///< more than limits::max_attributes lines in one request
  request_too_large,    ///< more than limits::max_request bytes before the empty line
  missing_equals,       ///< a non-empty line without '='
  empty_name,           ///< a line starting with '='
  nul_byte,             ///< NUL anywhere in a line (the protocol forbids it)
  wrong_request_type,   ///< request= missing or not "smtpd_access_policy"
};

/// Stable, greppable name of an error for logs and counters ("line_too_long").
std::string_view to_string(parse_error error);

enum class parse_status : std::uint8_t { need_more, complete, error };

struct parse_result {
  parse_status status = parse_status::need_more;
  /// Bytes of the input consumed. On complete, input past this point belongs to the next
  /// request; on need_more it is the whole input; on error the connection must be closed.
  std::size_t consumed = 0;
  parse_error error = parse_error::none;
};

class request_parser {
 public:
  explicit request_parser(limits bounds = {});

  /// Feeds bytes into the request being assembled in `out`. The caller clears `out` (or calls
  /// reset) before the first byte of each request. First value wins on duplicate names.
  parse_result feed(std::string_view bytes, policy_request& out);

  /// Forgets any partial request so the next feed starts a new one.
  void reset();

  /// True while a request has started (some bytes consumed) but is not complete.
  bool in_request() const { return request_bytes_ > 0; }

  const limits& bounds() const { return bounds_; }

 private:
  parse_error finish_line(std::string_view line, policy_request& out);
  parse_error finish_request(const policy_request& out) const;

  limits bounds_;
  std::string line_;  ///< the partial line carried across feeds, at most max_line bytes
  std::size_t request_bytes_ = 0;
  std::size_t attribute_count_ = 0;
  std::uint64_t seen_mask_ = 0;  ///< which known attributes already got their first value
  std::size_t next_lookup_ = 0;  ///< attribute table slot after the last match (Postfix's order)
};

}  // namespace rcptguard::protocol

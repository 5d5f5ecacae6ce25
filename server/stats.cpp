#include "server/stats.hpp"

namespace rcptguard::server {

std::string_view to_string(drop_reason reason) {
  switch (reason) {
    case drop_reason::parse_error:
      return "parse_error";
    case drop_reason::request_timeout:
      return "request_timeout";
    case drop_reason::reply_timeout:
      return "reply_timeout";
    case drop_reason::internal_error:
      return "internal_error";
    case drop_reason::connection_limit:
      return "connection_limit";
    case drop_reason::client_connection_limit:
      return "client_connection_limit";
    case drop_reason::fd_limit:
      return "fd_limit";
    case drop_reason::client_not_allowed:
      return "client_not_allowed";
  }
  return "unknown";
}

}  // namespace rcptguard::server

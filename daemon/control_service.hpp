// The operator control socket: a unix socket served on the network thread's io_context, for
// `rcptguard allow|unallow|reset|release|status`. One connection carries one JSON request line
// and gets one JSON reply line, then closes.
//
// Who asks comes from the kernel, never from the request: the caller's uid and groups are the
// socket's peer credentials (SO_PEERCRED, SO_PEERGROUPS), and only root, the daemon's own uid and
// members of control.group are served. The uid's user name (for the audit log) is looked up on a
// helper thread, since NSS may ask a directory server; nothing here waits on the network thread.
// Bounded: control_limits below.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "daemon/accept_loop.hpp"

namespace rcptguard::daemon {

namespace control_limits {
/// Longest request line (the newline included); a longer one is refused with an error reply.
inline constexpr std::size_t max_request_line = 64 * 1024;
/// Control connections served at once; beyond it a new one is closed at once. Operators are
/// few, and each connection costs a descriptor and a helper-thread look-up.
inline constexpr std::size_t max_connections = 4;
/// From accept to the reply written: a caller that sends or reads too slowly is disconnected.
inline constexpr std::chrono::seconds timeout{10};
/// Refused callers logged and handed to on_refused per minute; the rest are only counted, so
/// a local user in a loop cannot flood the log or the audit table.
inline constexpr std::uint32_t refusals_reported_per_minute = 10;
}  // namespace control_limits

/// The caller of one control connection, from its peer credentials.
struct control_caller {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
  std::string user;           ///< the uid's user name; empty when it has none
  std::vector<gid_t> groups;  ///< supplementary groups (SO_PEERGROUPS, else the group database)

  /// "alice (uid 1000)", or "uid 1000" without a name: how logs and errors name the caller.
  std::string describe() const;
};

class control_service {
 public:
  /// Answers one request line of an allowed caller with one reply line (without the newline).
  using handler_fn = std::function<std::string(std::string_view line, const control_caller&)>;
  /// A caller that may not use the socket; `why` names the rule it failed. Rate-limited
  /// (control_limits::refusals_reported_per_minute).
  using refused_fn = std::function<void(const control_caller&, const std::string& why)>;

  control_service(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log,
                  handler_fn handler, refused_fn on_refused);
  control_service(const control_service&) = delete;
  control_service& operator=(const control_service&) = delete;
  /// Closes the socket and removes its path (if still ours); waits for a look-up in progress.
  ~control_service();

  /// Before the privilege drop: binds settings.socket (replacing only a stale socket), sets its
  /// mode and group, and fixes who may use it: root, the uid the daemon will run as (that of
  /// `server_user`, else the current one) and members of settings.group (else of the daemon's
  /// group). Throws std::runtime_error naming the path or group.
  void bind(const control_settings& settings, const std::string& server_user);

  void start_accepting();
  /// Stops accepting and closes every control connection.
  void shutdown();

  /// The socket's path as bound (absolute).
  const std::string& path() const { return path_; }
  /// The group whose members may use it, by name (or number when it has none).
  const std::string& group_name() const { return group_name_; }
  /// Whether `caller` may use the socket, and if not, why not.
  bool allowed(const control_caller& caller, std::string& why) const;

 private:
  class connection;
  friend class connection;

  void admit(boost::asio::local::stream_protocol::socket socket);
  void report_refusal(const control_caller& caller, const std::string& why);
  void closed(connection* c) { connections_.erase(c); }

  boost::asio::io_context& io_;
  std::shared_ptr<spdlog::logger> log_;
  handler_fn handler_;
  refused_fn on_refused_;
  accept_loop<boost::asio::local::stream_protocol::acceptor> listener_;
  /// User-name look-ups, one at a time, off the network thread.
  boost::asio::thread_pool lookups_{1};
  std::string path_;
  uid_t daemon_uid_ = 0;
  gid_t group_ = 0;
  std::string group_name_;
  std::string daemon_user_;
  std::unordered_set<connection*> connections_;
  std::chrono::steady_clock::time_point refusal_minute_{};
  std::uint32_t refusals_reported_ = 0;
  std::uint64_t refusals_unreported_ = 0;
  std::uint64_t busy_closed_ = 0;
};

}  // namespace rcptguard::daemon

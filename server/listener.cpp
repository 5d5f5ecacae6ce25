#include "server/listener.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace rcptguard::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {

constexpr auto cap_log_interval = std::chrono::seconds(10);
constexpr auto accept_retry_delay = std::chrono::milliseconds(100);
// Connections refused in one pass at EMFILE before other work gets the network thread back.
constexpr int max_refused_per_pass = 256;

std::string describe(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
         std::to_string(ep.port());
}

// A stale socket file is one nobody accepts on: connecting fails with ECONNREFUSED.
bool socket_is_live(const std::string& path) {
  asio::io_context probe_io;
  local::socket probe(probe_io);
  boost::system::error_code ec;
  probe.connect(local::endpoint(path), ec);
  return !ec;
}

}  // namespace

void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error("unix socket " + path + ": " + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    throw std::runtime_error("unix socket " + path +
                             ": path exists and is not a socket; refusing to replace it");
  }
  if (socket_is_live(path)) {
    throw std::runtime_error("unix socket " + path + ": another process is listening on it");
  }
  if (::unlink(path.c_str()) != 0) {
    throw std::runtime_error("unix socket " + path +
                             ": cannot remove stale socket: " + std::strerror(errno));
  }
}

listener_set::listener_set(asio::io_context& io, session_context& context, allow_fn allow_client)
    : io_(io),
      context_(context),
      allow_client_(std::move(allow_client)),
      reserve_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

listener_set::~listener_set() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
  // Sockets we created are ours to remove; a path that is no longer our socket is left alone.
  for (const auto& path : unix_paths_) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  }
}

void listener_set::bind_tcp(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("listen address '" + host + "' is not an IP address");
  const tcp::endpoint endpoint(address, port);
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && address.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  // accept_failed() accepts on the raw descriptor, which must never block.
  if (!ec) acceptor->native_non_blocking(true, ec);
  if (ec) throw std::runtime_error("cannot listen on " + describe(endpoint) + ": " + ec.message());
  tcp_acceptors_.push_back(std::move(acceptor));
}

void listener_set::bind_unix(const std::string& path, const unix_socket_options& options) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("unix socket " + path + ": path too long");
  }
  remove_stale_socket(path);
  auto acceptor = std::make_unique<local::acceptor>(io_);
  boost::system::error_code ec;
  acceptor->open(local::endpoint(path).protocol(), ec);
  if (!ec) acceptor->bind(local::endpoint(path), ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) acceptor->native_non_blocking(true, ec);
  if (ec) throw std::runtime_error("cannot listen on unix socket " + path + ": " + ec.message());
  unix_paths_.push_back(path);
  // The mode and group are set explicitly rather than inherited from the umask, because they are
  // the access control: whoever can connect can ask for verdicts.
  if (::chmod(path.c_str(), static_cast<mode_t>(options.mode)) != 0) {
    throw std::runtime_error("unix socket " + path + ": chmod: " + std::strerror(errno));
  }
  if (!options.group.empty()) {
    const struct group* gr = ::getgrnam(options.group.c_str());
    if (gr == nullptr) {
      throw std::runtime_error("unix socket " + path + ": unknown group '" + options.group + "'");
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0) {
      throw std::runtime_error("unix socket " + path + ": chown: " + std::strerror(errno));
    }
  }
  unix_acceptors_.push_back(std::move(acceptor));
}

std::vector<std::uint16_t> listener_set::bound_tcp_ports() const {
  std::vector<std::uint16_t> ports;
  for (const auto& acceptor : tcp_acceptors_) ports.push_back(acceptor->local_endpoint().port());
  return ports;
}

void listener_set::start_accepting() {
  accepting_ = true;
  for (auto& acceptor : tcp_acceptors_) accept_tcp(*acceptor);
  for (auto& acceptor : unix_acceptors_) accept_unix(*acceptor);
}

void listener_set::shutdown() {
  accepting_ = false;
  boost::system::error_code ignored;
  for (auto& acceptor : tcp_acceptors_) acceptor->close(ignored);
  for (auto& acceptor : unix_acceptors_) acceptor->close(ignored);
  // close_when_idle may remove the session from the set; iterate over a copy.
  std::vector<session_base*> live;
  live.reserve(sessions_.size());
  for (const auto& [s, client] : sessions_) live.push_back(s);
  for (session_base* s : live) s->close_when_idle();
}

std::size_t listener_set::idle_sessions() const {
  std::size_t idle = 0;
  for (const auto& [s, client] : sessions_) {
    if (s->idle_since()) ++idle;
  }
  return idle;
}

session_base* listener_set::longest_idle(const std::string& client) const {
  session_base* oldest = nullptr;
  std::optional<session_base::clock::time_point> oldest_since;
  for (const auto& [s, s_client] : sessions_) {
    if (!client.empty() && s_client != client) continue;
    const auto since = s->idle_since();
    if (since && (!oldest_since || *since < *oldest_since)) {
      oldest = s;
      oldest_since = since;
    }
  }
  return oldest;
}

bool listener_set::admit(const std::string& client, const std::string& peer) {
  // The per-client cap first: a client at it displaces only its own sessions.
  if (!client.empty() && limits_.max_per_client > 0) {
    const auto held = sessions_per_client_.find(client);
    if (held != sessions_per_client_.end() && held->second >= limits_.max_per_client) {
      session_base* victim = longest_idle(client);
      note_cap(drop_reason::client_connection_limit, client, victim != nullptr, peer);
      if (victim == nullptr) return false;
      victim->close_when_idle();
    }
  }
  if (sessions_.size() >= limits_.max_connections) {
    session_base* victim = longest_idle({});
    note_cap(drop_reason::connection_limit, {}, victim != nullptr, peer);
    if (victim == nullptr) return false;
    victim->close_when_idle();
  }
  return true;
}

void listener_set::note_cap(drop_reason refusal, const std::string& client, bool evicted,
                            const std::string& peer) {
  const bool per_client = refusal == drop_reason::client_connection_limit;
  cap_log& counts = per_client ? client_cap_log_ : global_cap_log_;
  if (evicted) {
    ++context_.stats->connections_evicted;
    ++counts.evicted;
  } else {
    context_.stats->count_drop(refusal);
    ++counts.refused;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - counts.last < cap_log_interval) return;
  if (per_client) {
    context_.log->warn(
        "CLIENT CONNECTION LIMIT client={} max_connections_per_client={}: evicted {} of its idle "
        "connection(s), refused {} (every one busy)",
        client, limits_.max_per_client, counts.evicted, counts.refused);
  } else {
    context_.log->warn(
        "CONNECTION LIMIT open={} max_connections={}: evicted {} idle connection(s), refused {} "
        "(every one busy), latest from {}",
        sessions_.size(), limits_.max_connections, counts.evicted, counts.refused, peer);
  }
  counts = cap_log{now, 0, 0};
}

void listener_set::accept_failed(const boost::system::error_code& ec, int listen_fd,
                                 std::function<void()> accept_again) {
  const bool out_of_descriptors =
      ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system;
  std::uint64_t refused = 0;
  if (out_of_descriptors && reserve_fd_ >= 0) {
    // The reserve makes room for accepting, and so refusing, what waits in the backlog; a client
    // left there would wait for its own timeout instead of trying its fallback at once.
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    for (int i = 0; i < max_refused_per_pass; ++i) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) break;
      ::close(fd);
      ++refused;
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    context_.stats->count_drop(drop_reason::fd_limit, refused);
  }
  fd_log_.refused += refused;
  const auto now = std::chrono::steady_clock::now();
  if (now - fd_log_.last >= cap_log_interval) {
    if (out_of_descriptors) {
      context_.log->error(
          "ACCEPT FAILED: {}; refused {} connection(s) since the last line; raise the file "
          "descriptor limit (LimitNOFILE) or lower server.max_connections",
          ec.message(), fd_log_.refused);
    } else {
      context_.log->error("ACCEPT FAILED: {}; retrying", ec.message());
    }
    fd_log_ = cap_log{now, 0, 0};
  }
  // Accepting again at once is right only if the backlog was being drained: with no descriptor
  // free, accept fails at once even when nobody waits, and retrying would spin.
  if (refused > 0) {
    accept_again();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, accept_retry_delay);
  timer->async_wait(
      [timer, accept_again = std::move(accept_again)](const boost::system::error_code& wait_ec) {
        if (!wait_ec) accept_again();
      });
}

template <typename Socket>
void listener_set::launch(Socket socket, std::string client, std::string peer) {
  const std::uint64_t id = next_id_++;
  auto s = std::make_shared<session<Socket>>(
      std::move(socket), id, std::move(peer), context_, [this](session_base* closed) {
        const auto found = sessions_.find(closed);
        if (found == sessions_.end()) return;
        if (!found->second.empty()) {
          const auto held = sessions_per_client_.find(found->second);
          if (held != sessions_per_client_.end() && --held->second == 0) {
            sessions_per_client_.erase(held);
          }
        }
        sessions_.erase(found);
        --context_.stats->connections_open;
      });
  if (!client.empty()) ++sessions_per_client_[client];
  sessions_.emplace(s.get(), std::move(client));
  ++context_.stats->connections_accepted;
  ++context_.stats->connections_open;
  context_.stats->peak_connections =
      std::max(context_.stats->peak_connections, context_.stats->connections_open);
  s->start();
}

void listener_set::accept_tcp(tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](const boost::system::error_code& ec, tcp::socket socket) {
    if (!accepting_) return;
    if (!ec) {
      boost::system::error_code peer_ec;
      const auto remote = socket.remote_endpoint(peer_ec);
      if (!peer_ec) {
        const std::string peer = describe(remote);
        if (!allow_client_(remote.address())) {
          context_.stats->count_drop(drop_reason::client_not_allowed);
          context_.log->warn("CLIENT NOT ALLOWED peer={}: not in server.allow_clients", peer);
        } else if (std::string client = remote.address().to_string(); admit(client, peer)) {
          socket.set_option(tcp::no_delay(true), peer_ec);
          launch(std::move(socket), std::move(client), peer);
        }
      }
    } else if (ec != asio::error::operation_aborted) {
      accept_failed(ec, acceptor.native_handle(), [this, &acceptor] { accept_tcp(acceptor); });
      return;
    }
    accept_tcp(acceptor);
  });
}

void listener_set::accept_unix(local::acceptor& acceptor) {
  acceptor.async_accept(
      [this, &acceptor](const boost::system::error_code& ec, local::socket socket) {
        if (!accepting_) return;
        if (!ec) {
          const std::string peer = "unix:" + acceptor.local_endpoint().path();
          if (admit({}, peer)) launch(std::move(socket), {}, peer);
        } else if (ec != asio::error::operation_aborted) {
          accept_failed(ec, acceptor.native_handle(), [this, &acceptor] { accept_unix(acceptor); });
          return;
        }
        accept_unix(acceptor);
      });
}

}  // namespace rcptguard::server

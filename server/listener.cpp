#include "server/listener.hpp"

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

// Refusals at the connection cap can come thousands per second; one line per interval is enough.
constexpr auto cap_log_interval = std::chrono::seconds(10);
constexpr auto accept_retry_delay = std::chrono::milliseconds(100);

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

}  // namespace

listener_set::listener_set(asio::io_context& io, session_context& context, allow_fn allow_client)
    : io_(io), context_(context), allow_client_(std::move(allow_client)) {}

listener_set::~listener_set() {
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
  const std::vector<session_base*> live(sessions_.begin(), sessions_.end());
  for (session_base* s : live) s->close_when_idle();
}

bool listener_set::admit(const std::string& peer) {
  if (sessions_.size() < max_connections_) return true;
  context_.stats->count_drop(drop_reason::connection_limit);
  ++cap_refusals_since_log_;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_cap_log_ >= cap_log_interval) {
    context_.log->warn(
        "CONNECTION LIMIT open={} max_connections={}: refused {} connection(s), latest from {}",
        sessions_.size(), max_connections_, cap_refusals_since_log_, peer);
    last_cap_log_ = now;
    cap_refusals_since_log_ = 0;
  }
  return false;
}

void listener_set::retry_accept_later(const boost::system::error_code& ec,
                                      std::function<void()> accept_again) {
  // EMFILE and friends fail at once; retrying immediately would spin. A short pause lets
  // descriptors free up while the log says why connections wait.
  context_.log->error("ACCEPT FAILED: {}; retrying in {} ms", ec.message(),
                      accept_retry_delay.count());
  auto timer = std::make_shared<asio::steady_timer>(io_, accept_retry_delay);
  timer->async_wait(
      [timer, accept_again = std::move(accept_again)](const boost::system::error_code& wait_ec) {
        if (!wait_ec) accept_again();
      });
}

template <typename Socket>
void listener_set::launch(Socket socket, std::string peer) {
  const std::uint64_t id = next_id_++;
  auto s = std::make_shared<session<Socket>>(std::move(socket), id, std::move(peer), context_,
                                             [this](session_base* closed) {
                                               sessions_.erase(closed);
                                               --context_.stats->connections_open;
                                             });
  sessions_.insert(s.get());
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
        } else if (admit(peer)) {
          socket.set_option(tcp::no_delay(true), peer_ec);
          launch(std::move(socket), peer);
        }
      }
    } else if (ec != asio::error::operation_aborted) {
      retry_accept_later(ec, [this, &acceptor] { accept_tcp(acceptor); });
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
          if (admit(peer)) launch(std::move(socket), peer);
        } else if (ec != asio::error::operation_aborted) {
          retry_accept_later(ec, [this, &acceptor] { accept_unix(acceptor); });
          return;
        }
        accept_unix(acceptor);
      });
}

}  // namespace rcptguard::server

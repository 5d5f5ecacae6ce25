// The Prometheus endpoint (see metrics_service.hpp): one acceptor and a few Beast connections,
// all on the network thread.
#include "daemon/metrics_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "daemon/metrics_text.hpp"

namespace rcptguard::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto warning_interval = std::chrono::seconds(10);
// Out of descriptors, accept fails at once; retrying at once would spin the network thread.

std::string describe(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
         std::to_string(ep.port());
}

bool is_metrics_path(std::string_view target) {
  return target == "/metrics" || target.starts_with("/metrics?");
}

}  // namespace

/// One scraper's connection: read a request under the deadline, answer, repeat while the client
/// keeps the connection alive. Owned by its pending operation; listed in connections_ until
/// closed, so stop() can close it.
class metrics_service::connection : public std::enable_shared_from_this<connection> {
 public:
  connection(tcp::socket socket, metrics_service& owner, std::string peer)
      : stream_(std::move(socket)), owner_(owner), peer_(std::move(peer)) {}

  void start() { read(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    owner_.connections_.erase(this);
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(max_header_bytes));
    stream_.expires_after(timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec) {
      // A client that leaves between requests, or lets an idle keep-alive connection time out,
      // did nothing wrong.
      const bool between_requests =
          !parser_->got_some() &&
          (ec == http::error::end_of_stream || ec == beast::error::timeout ||
           ec == asio::error::connection_reset || ec == asio::error::eof);
      if (ec != asio::error::operation_aborted && !between_requests) {
        ++owner_.stats_.bad_requests;
        owner_.warn_limited(fmt::format(
            "METRICS REQUEST REJECTED peer={}: {} (limits: headers {} bytes, no body, {} s)", peer_,
            ec.message(), max_header_bytes, timeout.count()));
      }
      close();
      return;
    }
    respond(parser_->get());
  }

  void respond(const http::request<http::empty_body>& request) {
    const bool head = request.method() == http::verb::head;
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive());
    response_.set(http::field::content_type, "text/plain; charset=utf-8");
    const beast::string_view target = request.target();
    if (!is_metrics_path(std::string_view{target.data(), target.size()})) {
      ++owner_.stats_.not_found;
      response_.result(http::status::not_found);
      response_.body() = "Not found: the metrics are at /metrics\n";
    } else if (!head && request.method() != http::verb::get) {
      ++owner_.stats_.not_found;
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.body() = "Only GET and HEAD\n";
    } else {
      ++owner_.stats_.scrapes;
      response_.result(http::status::ok);
      response_.set(http::field::content_type, metrics_content_type);
      response_.body() = owner_.render_();
    }
    // HEAD: the length GET would send, without the body.
    const std::size_t length = response_.body().size();
    if (head) response_.body().clear();
    response_.content_length(length);
    stream_.expires_after(timeout);
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void on_written(beast::error_code ec) {
    if (closed_) return;
    if (ec || !response_.keep_alive() || !owner_.listener_.accepting()) {
      close();
      return;
    }
    read();
  }

  beast::tcp_stream stream_;
  /// Bounds memory besides the parser's header limit: a request and a pipelined one's start.
  beast::flat_buffer buffer_{2 * max_header_bytes};
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
  metrics_service& owner_;
  std::string peer_;
  bool closed_ = false;
};

metrics_service::metrics_service(asio::io_context& io, std::shared_ptr<spdlog::logger> log,
                                 std::function<std::string()> render)
    : log_(std::move(log)), render_(std::move(render)), listener_(io) {}

metrics_service::~metrics_service() {
  stop();
}

void metrics_service::bind(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("metrics.listen: '" + host + "' is not an IP address");
  const tcp::endpoint endpoint(address, port);
  auto& acceptor = listener_.acceptor();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && address.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(static_cast<int>(2 * max_connections), ec);
  if (ec) {
    throw std::runtime_error("metrics.listen: cannot listen on " + describe(endpoint) + ": " +
                             ec.message());
  }
}

std::uint16_t metrics_service::port() const {
  boost::system::error_code ec;
  return listener_.acceptor().local_endpoint(ec).port();
}

void metrics_service::set_allowlist(std::vector<cidr> networks) {
  allowlist_ = std::move(networks);
}

void metrics_service::start() {
  listener_.start([this](tcp::socket socket) { admit(std::move(socket)); },
                  [this](const boost::system::error_code& ec) {
                    warn_limited(fmt::format("METRICS ACCEPT FAILED: {}; retrying", ec.message()));
                  });
}

void metrics_service::stop() {
  listener_.stop();
  // close() removes the connection from the set; iterate over a copy.
  const std::vector<connection*> live(connections_.begin(), connections_.end());
  for (connection* c : live) c->close();
}

void metrics_service::admit(tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const std::string peer = describe(remote);
  // A refused socket is closed as it goes out of scope, without a word.
  if (!allowed(remote.address())) {
    ++stats_.not_allowed;
    warn_limited(
        fmt::format("METRICS CLIENT NOT ALLOWED peer={}: not in metrics.allow_clients", peer));
    return;
  }
  if (connections_.size() >= max_connections) {
    ++stats_.over_limit;
    warn_limited(fmt::format("METRICS CONNECTION LIMIT peer={}: {} connections open, refused", peer,
                             connections_.size()));
    return;
  }
  auto c = std::make_shared<connection>(std::move(socket), *this, peer);
  connections_.insert(c.get());
  c->start();
}

bool metrics_service::allowed(const asio::ip::address& address) const {
  const auto in_allowlist = [this](const auto& bytes) {
    return std::ranges::any_of(allowlist_, [&](const cidr& net) { return net.contains(bytes); });
  };
  return address.is_v4() ? in_allowlist(address.to_v4().to_bytes())
                         : in_allowlist(address.to_v6().to_bytes());
}

void metrics_service::warn_limited(const std::string& line) {
  const auto now = std::chrono::steady_clock::now();
  if (last_warning_ && now - *last_warning_ < warning_interval) {
    ++warnings_unlogged_;
    return;
  }
  if (warnings_unlogged_ == 0) {
    log_->warn("{}", line);
  } else {
    log_->warn("{} ({} more since the last such line)", line, warnings_unlogged_);
  }
  last_warning_ = now;
  warnings_unlogged_ = 0;
}

}  // namespace rcptguard::daemon

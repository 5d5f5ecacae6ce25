// One policy connection: read a request, hand it to the request_handler, write the reply, repeat.
// Postfix sends one request at a time and keeps the connection for many (SMTPD_POLICY_README),
// so a session is a loop with two clocks: an idle timeout between requests and a total deadline
// per request that starts at its first byte (a client dripping bytes cannot extend it).
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/text.hpp"
#include "protocol/parser.hpp"
#include "protocol/reply.hpp"
#include "server/request_handler.hpp"
#include "server/stats.hpp"

namespace rcptguard::server {

/// Settings a session reads at each use, so a SIGHUP reload reaches live connections.
struct session_settings {
  protocol::limits limits;
  std::chrono::milliseconds idle_timeout{600'000};
  std::chrono::milliseconds request_timeout{10'000};
  protocol::internal_error_policy on_internal_error = protocol::internal_error_policy::fail_open;
};

/// Shared by all sessions of a server; lives on the network thread.
struct session_context {
  session_settings settings;
  request_handler* handler = nullptr;
  server_stats* stats = nullptr;
  std::shared_ptr<spdlog::logger> log;
};

/// Lets the server close idle sessions at shutdown, or to make room, without owning them.
class session_base {
 public:
  using clock = std::chrono::steady_clock;

  session_base() = default;
  session_base(const session_base&) = delete;
  session_base& operator=(const session_base&) = delete;
  virtual ~session_base() = default;
  /// Closes now if no request is in progress, otherwise right after its reply.
  virtual void close_when_idle() = 0;
  /// When the session last finished a reply (or was accepted); empty while a request is being
  /// read or answered, so only a session waiting between requests can be chosen to make room.
  virtual std::optional<clock::time_point> idle_since() const = 0;
};

template <typename Socket>
class session : public session_base, public std::enable_shared_from_this<session<Socket>> {
 public:
  using on_close_fn = std::function<void(session_base*)>;

  session(Socket socket, std::uint64_t id, std::string peer, session_context& context,
          on_close_fn on_close)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        id_(id),
        peer_(std::move(peer)),
        context_(context),
        parser_(context.settings.limits),
        on_close_(std::move(on_close)) {}

  void start() {
    idle_since_ = clock::now();
    idle_deadline_ = idle_since_ + context_.settings.idle_timeout;
    arm_timer(idle_deadline_);
    read();
  }

  void close_when_idle() override {
    closing_ = true;
    if (!busy_ && !parser_.in_request()) close();
  }

  std::optional<clock::time_point> idle_since() const override {
    if (closed_ || busy_ || parser_.in_request()) return std::nullopt;
    return idle_since_;
  }

 private:
  void read() {
    socket_.async_read_some(
        boost::asio::buffer(buffer_),
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    // A read Asio completed before this session was closed (at shutdown, or evicted at a cap)
    // still arrives with success: its request must not be counted, as it can never be answered.
    if (closed_) return;
    if (ec) {
      if (parser_.in_request() && ec != boost::asio::error::operation_aborted) {
        context_.log->warn("REQUEST INCOMPLETE conn={} peer={}: connection closed mid-request ({})",
                           id_, peer_, ec.message());
      }
      close();
      return;
    }
    const bool was_in_request = parser_.in_request();
    pending_ = std::string_view(buffer_.data(), n);
    process();
    if (!was_in_request && parser_.in_request() && !closed_) start_request_deadline();
  }

  // Parses what is buffered; replies to a complete request or reads more.
  void process() {
    // A reload reaches live connections between requests; Postfix keeps them for up to 1000 s.
    if (!parser_.in_request() && !(parser_.bounds() == context_.settings.limits)) {
      parser_ = protocol::request_parser(context_.settings.limits);
    }
    const protocol::parse_result result = parser_.feed(pending_, request_);
    pending_.remove_prefix(result.consumed);
    switch (result.status) {
      case protocol::parse_status::need_more:
        read();
        return;
      case protocol::parse_status::error:
        context_.stats->count_parse_error(result.error);
        context_.stats->count_drop(drop_reason::parse_error);
        context_.log->warn(
            "REQUEST REJECTED conn={} peer={} reason={} (limits: line {}, attributes {}, request "
            "{})",
            id_, peer_, protocol::to_string(result.error), parser_.bounds().max_line,
            parser_.bounds().max_attributes, parser_.bounds().max_request);
        close();
        return;
      case protocol::parse_status::complete:
        answer();
        return;
    }
  }

  void answer() {
    reply_started_ = clock::now();
    request_deadline_.reset();
    ++context_.stats->requests;
    reply_.clear();
    try {
      context_.handler->handle(request_, id_, reply_);
    } catch (const std::exception& e) {
      if (!internal_error(e.what())) return;
    } catch (...) {
      if (!internal_error("unknown exception")) return;
    }
    request_.clear();
    busy_ = true;
    // A client that stops reading its replies would hold the write forever; the reply gets the
    // same allowance as a request.
    write_deadline_ = clock::now() + context_.settings.request_timeout;
    if (write_deadline_ < timer_expiry_) arm_timer(write_deadline_);
    boost::asio::async_write(
        socket_, boost::asio::buffer(reply_),
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          self->on_written(ec);
        });
  }

  // Returns true when a fail-open reply was prepared and should be written.
  bool internal_error(const char* what) {
    const bool fail_open =
        context_.settings.on_internal_error == protocol::internal_error_policy::fail_open;
    context_.log->error("INTERNAL ERROR conn={} peer={}: {} ({})", id_, peer_,
                        sanitize_for_log(what, 200),
                        fail_open ? "answered DUNNO" : "disconnecting");
    if (!fail_open) {
      context_.stats->count_drop(drop_reason::internal_error);
      close();
      return false;
    }
    ++context_.stats->internal_errors_answered;
    reply_.clear();
    protocol::format_reply(protocol::policy_action::dunno(), reply_);
    return true;
  }

  void on_written(const boost::system::error_code& ec) {
    busy_ = false;
    if (ec) {
      close();
      return;
    }
    const clock::time_point written = clock::now();
    context_.stats->reply_latency.observe(written - reply_started_);
    if (closing_) {
      close();
      return;
    }
    idle_since_ = written;
    idle_deadline_ = idle_since_ + context_.settings.idle_timeout;
    if (!pending_.empty()) {
      // Postfix never pipelines, but a client that did gets its next request served in order.
      const bool was_in_request = parser_.in_request();
      process();
      if (!was_in_request && parser_.in_request() && !closed_) start_request_deadline();
      return;
    }
    read();
  }

  void start_request_deadline() {
    request_deadline_ = clock::now() + context_.settings.request_timeout;
    if (*request_deadline_ < timer_expiry_) arm_timer(*request_deadline_);
  }

  // One timer serves both clocks: it is re-armed only when a deadline moves earlier, and on
  // expiry it re-checks the current deadline, so the common path (a request that arrives in
  // one read) costs no timer operation at all.
  void arm_timer(clock::time_point at) {
    timer_expiry_ = at;
    timer_.expires_at(at);
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->on_timer();
    });
  }

  void on_timer() {
    if (closed_) return;
    const auto now = clock::now();
    if (request_deadline_ && now >= *request_deadline_) {
      context_.stats->count_drop(drop_reason::request_timeout);
      context_.log->warn(
          "REQUEST TIMEOUT conn={} peer={}: request incomplete at its deadline ({} ms)", id_, peer_,
          context_.settings.request_timeout.count());
      close();
      return;
    }
    if (busy_ && now >= write_deadline_) {
      context_.stats->count_drop(drop_reason::reply_timeout);
      context_.log->warn(
          "REPLY TIMEOUT conn={} peer={}: client did not read its reply within {} ms", id_, peer_,
          context_.settings.request_timeout.count());
      close();
      return;
    }
    if (!request_deadline_ && !busy_ && now >= idle_deadline_) {
      ++context_.stats->idle_timeouts;
      context_.log->debug("IDLE TIMEOUT conn={} peer={} after {} ms", id_, peer_,
                          context_.settings.idle_timeout.count());
      close();
      return;
    }
    clock::time_point next = idle_deadline_;
    if (request_deadline_) next = std::min(next, *request_deadline_);
    if (busy_) next = std::min(next, write_deadline_);
    arm_timer(std::max(next, now + std::chrono::milliseconds(1)));
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
    // The session boundary: a fault here must neither end the daemon nor skip on_close_.
    try {
      context_.handler->connection_closed(id_);
    } catch (const std::exception& e) {
      context_.log->error("INTERNAL ERROR conn={} peer={} at close: {}", id_, peer_,
                          sanitize_for_log(e.what(), 200));
    } catch (...) {
      context_.log->error("INTERNAL ERROR conn={} peer={} at close: unknown exception", id_, peer_);
    }
    on_close_(this);
  }

  Socket socket_;
  boost::asio::steady_timer timer_;
  std::uint64_t id_;
  std::string peer_;
  session_context& context_;
  protocol::request_parser parser_;
  protocol::policy_request request_;
  std::array<char, 16384> buffer_{};
  std::string_view pending_;  ///< unparsed bytes of buffer_, valid until the next read
  std::string reply_;
  on_close_fn on_close_;
  clock::time_point idle_since_{};
  clock::time_point idle_deadline_{};
  std::optional<clock::time_point> request_deadline_;
  clock::time_point write_deadline_{};
  clock::time_point reply_started_{};  ///< the request's last byte parsed
  clock::time_point timer_expiry_{};
  bool busy_ = false;     ///< a reply is being written
  bool closing_ = false;  ///< shutting down: close after the current reply
  bool closed_ = false;
};

}  // namespace rcptguard::server

// The accept loop of the daemon's own small servers (the control socket, the metrics endpoint):
// accept, hand the socket over, accept again. A failed accept (out of descriptors, most likely)
// waits a second instead of spinning; stop() ends the loop for good, a pending retry included.
// On the io_context's thread only, like the services that own it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <utility>

namespace rcptguard::daemon {

template <class Acceptor>
class accept_loop {
 public:
  using socket_type = typename Acceptor::protocol_type::socket;
  using admit_fn = std::function<void(socket_type)>;
  using failed_fn = std::function<void(const boost::system::error_code&)>;
  static constexpr std::chrono::seconds retry_delay{1};

  explicit accept_loop(boost::asio::io_context& io) : acceptor_(io), retry_timer_(io) {}

  /// To open, bind and listen before start(); and to close at destruction.
  Acceptor& acceptor() { return acceptor_; }
  const Acceptor& acceptor() const { return acceptor_; }
  bool accepting() const { return accepting_; }

  /// Hands each accepted socket to `admit`; tells `failed` of each failed accept, retried
  /// after retry_delay. Does nothing when already accepting or the acceptor is not open.
  void start(admit_fn admit, failed_fn failed) {
    if (accepting_ || !acceptor_.is_open()) return;
    admit_ = std::move(admit);
    failed_ = std::move(failed);
    accepting_ = true;
    accept();
  }

  void stop() {
    accepting_ = false;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, socket_type socket) {
      if (!accepting_) return;
      if (ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        failed_(ec);
        retry_timer_.expires_after(retry_delay);
        retry_timer_.async_wait([this](const boost::system::error_code& wait) {
          if (!wait && accepting_) accept();
        });
        return;
      }
      admit_(std::move(socket));
      accept();
    });
  }

  Acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  admit_fn admit_;
  failed_fn failed_;
  bool accepting_ = false;
};

}  // namespace rcptguard::daemon

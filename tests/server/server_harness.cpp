// The in-process server of server_harness.hpp.
#include "tests/server/server_harness.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace rcptguard::server_test {

void scripted_handler::handle(const protocol::policy_request& request,
                              std::uint64_t /*connection_id*/, std::string& reply) {
  ++handled_;
  // Append something first, so the test also shows a half-written reply is discarded.
  reply.append("action=");
  if (faults_to_inject.load() > 0) {
    --faults_to_inject;
    throw std::runtime_error("scripted fault\nwith a line break");
  }
  if (answer.load() == behaviour::echo_recipient) {
    reply.append("WARN ").append(request.recipient).append("\n\n");
  } else if (const std::size_t padding = reply_padding.load(); padding > 0) {
    reply.append("DUNNO\nx-padding=").append(padding, 'x').append("\n\n");
  } else {
    reply.append("DUNNO\n\n");
  }
}

void scripted_handler::connection_closed(std::uint64_t connection_id) {
  {
    const std::lock_guard lock(mutex_);
    ++closed_[connection_id];
  }
  if (close_faults_to_inject.load() > 0) {
    --close_faults_to_inject;
    throw std::runtime_error("scripted fault at connection close");
  }
}

std::size_t scripted_handler::closed_calls() const {
  const std::lock_guard lock(mutex_);
  std::size_t calls = 0;
  for (const auto& [id, count] : closed_) calls += static_cast<std::size_t>(count);
  return calls;
}

std::size_t scripted_handler::closed_twice() const {
  const std::lock_guard lock(mutex_);
  std::size_t twice = 0;
  for (const auto& [id, count] : closed_) {
    if (count > 1) ++twice;
  }
  return twice;
}

server_harness::server_harness(harness_options options)
    : options_(std::move(options)),
      log_sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000)) {
  auto log = std::make_shared<spdlog::logger>("server-test", log_sink_);
  log->set_pattern("%l: %v");
  log->set_level(spdlog::level::trace);
  context_.settings = options_.settings;
  context_.handler = &handler_;
  context_.stats = &stats_;
  context_.log = std::move(log);

  listeners_ = std::make_unique<server::listener_set>(io_, context_, options_.allow_client);
  listeners_->set_connection_limits(options_.limits);
  listeners_->bind_tcp("127.0.0.1", 0);
  tcp_port_ = listeners_->bound_tcp_ports().at(0);
  if (options_.unix_socket) {
    unix_path_ = options_.unix_path;
    if (unix_path_.empty()) {
      dir_ = std::make_unique<temp_dir>();
      unix_path_ = dir_->file("policy.sock");
    }
    listeners_->bind_unix(unix_path_, options_.unix_options);
  }
  listeners_->start_accepting();

  drained_future_ = drained_.get_future();
  io_thread_ = std::thread([this] {
    // In the daemon an exception here ends run_daemon() and the process; a test reports it and
    // carries on, as Asio allows, so the remaining checks still run.
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        ++escaped_exceptions_;
        ADD_FAILURE() << "exception escaped to io_context::run(), which would stop the daemon: "
                      << e.what();
      }
    }
    drained_.set_value();
  });
  watchdog_ = std::make_unique<watchdog>(options_.watchdog_timeout, [this] {
    ADD_FAILURE() << "watchdog: the test did not finish within "
                  << options_.watchdog_timeout.count() << " ms; stopping the server";
    watchdog_fired_ = true;
    io_.stop();
  });
}

server_harness::~server_harness() {
  watchdog_.reset();
  io_.stop();
  io_thread_.join();
  EXPECT_EQ(handler_.closed_twice(), 0U) << "connection_closed must come once per connection";
  // Sessions still referenced by unrun handlers die with io_; none of them calls back into the
  // listener_set, so it may go first.
  listeners_.reset();
}

bool server_harness::run_on_io(std::function<void()> f) {
  if (io_.stopped()) {
    ADD_FAILURE() << "the network thread has stopped";
    return false;
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  boost::asio::post(io_, [f = std::move(f), done] {
    f();
    done->set_value();
  });
  if (finished.wait_for(io_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "the network thread did not run a posted function within "
                  << io_timeout.count() << " ms";
    return false;
  }
  return true;
}

server::server_stats server_harness::stats() {
  auto copy = std::make_shared<server::server_stats>();
  run_on_io([this, copy] { *copy = stats_; });
  return *copy;
}

std::size_t server_harness::open_sessions() {
  auto open = std::make_shared<std::size_t>(0);
  run_on_io([this, open] { *open = listeners_->open_sessions(); });
  return *open;
}

std::size_t server_harness::idle_sessions() {
  auto idle = std::make_shared<std::size_t>(0);
  run_on_io([this, idle] { *idle = listeners_->idle_sessions(); });
  return *idle;
}

void server_harness::shutdown() {
  run_on_io([this] { listeners_->shutdown(); });
}

void server_harness::update_settings(const server::session_settings& settings) {
  run_on_io([this, settings] { context_.settings = settings; });
}

bool server_harness::wait_until_drained(std::chrono::milliseconds timeout) {
  return drained_future_.wait_for(timeout) == std::future_status::ready && !watchdog_fired_;
}

std::vector<std::string> server_harness::log_lines() const {
  std::vector<std::string> lines = log_sink_->last_formatted();
  for (auto& line : lines) {
    if (!line.empty() && line.back() == '\n') line.pop_back();
  }
  return lines;
}

bool server_harness::logged(std::string_view needle) const {
  for (const auto& line : log_lines()) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace rcptguard::server_test

// The production request_handler: stamps each request with the wall clock (the only clock read
// on the request path), asks the decision engine, counts the verdict and formats the reply.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

#include "decision/engine.hpp"
#include "server/request_handler.hpp"
#include "server/stats.hpp"

namespace rcptguard::server {

class policy_handler final : public request_handler {
 public:
  policy_handler(decision::engine& engine, server_stats& stats, std::shared_ptr<spdlog::logger> log)
      : engine_(engine), stats_(stats), log_(std::move(log)) {}

  void handle(const protocol::policy_request& request, std::uint64_t connection_id,
              std::string& reply) override;
  void connection_closed(std::uint64_t connection_id) override;

 private:
  decision::engine& engine_;
  server_stats& stats_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace rcptguard::server

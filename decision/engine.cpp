#include "decision/engine.hpp"

namespace rcptguard::decision {

verdict engine::decide(const protocol::policy_request& /*request*/, std::uint64_t /*connection_id*/,
                       time_point /*now*/) {
  return verdict{};
}

void engine::connection_closed(std::uint64_t /*connection_id*/, time_point /*now*/) {}

}  // namespace rcptguard::decision

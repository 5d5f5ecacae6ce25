// The decision seam: a parsed request and its time in, a verdict out. Pure: no clock, no I/O,
// no locks; one owner thread. Persistence happens elsewhere from the records in outbox().
#pragma once

#include <cstdint>
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

namespace rcptguard::decision {

struct verdict {
  verdict_level level = verdict_level::dunno;
  protocol::policy_action action;
  std::vector<reason> reasons;
};

class engine {
 public:
  engine() = default;

  /// Judges one request. `connection_id` identifies the policy connection it came on, so a
  /// transaction abandoned on that connection can be rolled back.
  verdict decide(const protocol::policy_request& request, std::uint64_t connection_id,
                 time_point now);

  /// The policy connection closed: any transaction still open on it never completed.
  void connection_closed(std::uint64_t connection_id, time_point now);

  /// Records produced since the caller last cleared it.
  outbox& pending() { return outbox_; }

 private:
  outbox outbox_;
};

}  // namespace rcptguard::decision

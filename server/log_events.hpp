// The one translation from a delivery the log showed (ingest) to what the engine counts
// (decision::log_feed), shared by `rcptguard ingest` and the daemon's log service.
#pragma once

#include "decision/log_feed.hpp"
#include "ingest/joiner.hpp"

namespace rcptguard::server {

/// Views into `e`, which must outlive the result; the time is the log line's own.
inline decision::log_message to_log_message(const ingest::message_event& e) {
  decision::log_message m;
  m.at = e.time;
  m.recipient = e.recipient;
  m.sender = e.sender;
  m.client_address = e.client_address;
  m.queue_id = e.queue_id;
  m.size = e.size;
  m.authenticated = e.authenticated;
  return m;
}

}  // namespace rcptguard::server

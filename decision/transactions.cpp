// The open-transaction pool (see transactions.hpp).
#include "decision/transactions.hpp"

namespace rcptguard::decision {

transaction_table::transaction_table(std::size_t max_open, std::size_t max_recipients,
                                     std::uint64_t seed)
    : max_open_(max_open == 0 ? 1 : max_open),
      max_recipients_(max_recipients),
      connection_key_(splitmix64(seed)),
      by_instance_(64),
      by_connection_(64) {}

std::uint64_t transaction_table::connection_hash(std::uint64_t connection) const {
  return mix(connection_key_, connection);
}

std::uint32_t transaction_table::find(std::string_view instance,
                                      std::uint64_t instance_hash) const {
  return by_instance_.find(instance_hash,
                           [&](std::uint32_t slot) { return slots_[slot].instance == instance; });
}

std::uint32_t transaction_table::on_connection(std::uint64_t connection) const {
  return by_connection_.find(connection_hash(connection), [&](std::uint32_t slot) {
    return slots_[slot].attached && slots_[slot].connection == connection;
  });
}

std::uint32_t transaction_table::open(std::string_view instance, std::uint64_t instance_hash,
                                      std::uint64_t connection, time_point now) {
  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  transaction& t = slots_[slot];
  t.instance.assign(instance);
  t.instance_hash = instance_hash;
  t.connection = connection;
  t.attached = true;
  t.last_activity = now;
  t.sender.clear();
  t.client.clear();
  t.sender_hash = 0;
  t.authenticated = false;
  t.recipient_count = 0;
  t.in_use = true;
  by_instance_.insert(instance_hash, slot);
  by_connection_.insert(connection_hash(connection), slot);
  ++open_count_;
  return slot;
}

void transaction_table::attach(std::uint32_t slot, std::uint64_t connection) {
  transaction& t = slots_[slot];
  if (t.attached && t.connection == connection) return;
  if (t.attached) by_connection_.erase(connection_hash(t.connection), slot);
  t.connection = connection;
  t.attached = true;
  by_connection_.insert(connection_hash(connection), slot);
}

void transaction_table::detach(std::uint64_t connection, time_point now) {
  const std::uint32_t slot = on_connection(connection);
  if (slot == npos) return;
  by_connection_.erase(connection_hash(connection), slot);
  slots_[slot].attached = false;
  slots_[slot].last_activity = now;
}

bool transaction_table::has_recipient(std::uint32_t slot, std::uint64_t recipient_hash) const {
  const transaction& t = slots_[slot];
  for (std::size_t i = 0; i < t.recipient_count; ++i) {
    if (t.recipients[i].recipient_hash == recipient_hash) return true;
  }
  return false;
}

bool transaction_table::add_recipient(std::uint32_t slot, std::string_view recipient,
                                      std::uint64_t recipient_hash, time_point at, bool settled) {
  transaction& t = slots_[slot];
  if (t.recipient_count >= max_recipients_) return false;
  if (t.recipient_count == t.recipients.size()) t.recipients.emplace_back();
  tentative& r = t.recipients[t.recipient_count++];
  r.recipient.assign(recipient);
  r.recipient_hash = recipient_hash;
  r.at = at;
  r.settled = settled;
  return true;
}

void transaction_table::release(std::uint32_t slot) {
  transaction& t = slots_[slot];
  if (!t.in_use) return;
  by_instance_.erase(t.instance_hash, slot);
  if (t.attached) by_connection_.erase(connection_hash(t.connection), slot);
  t.in_use = false;
  t.attached = false;
  t.recipient_count = 0;
  free_.push_back(slot);
  --open_count_;
}

std::uint32_t transaction_table::oldest() const {
  std::uint32_t best = npos;
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    if (!slots_[slot].in_use) continue;
    if (best == npos || slots_[slot].last_activity < slots_[best].last_activity) best = slot;
  }
  return best;
}

void transaction_table::expired(time_point now, std::chrono::seconds timeout,
                                std::chrono::seconds grace, std::vector<std::uint32_t>& out) const {
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const transaction& t = slots_[slot];
    if (!t.in_use) continue;
    const auto idle = now - t.last_activity;
    if (idle >= (t.attached ? timeout : grace)) out.push_back(slot);
  }
}

}  // namespace rcptguard::decision

// Queue-id joining with bounded state (see joiner.hpp for what counts and why).
#include "ingest/joiner.hpp"

#include <algorithm>

namespace rcptguard::ingest {

namespace {

// Expiry is checked when log time has moved this far, not on every line.
constexpr std::chrono::seconds expiry_check_interval{10};

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return s == value; });
}

}  // namespace

joiner::joiner(joiner_options options) : options_(std::move(options)) {}

joiner::message_state* joiner::find() {
  const auto it = messages_.find(key_);
  return it == messages_.end() ? nullptr : &it->second;
}

joiner::message_state& joiner::open(time_point time, const mail_line& line) {
  if (message_state* found = find()) {
    found->last_seen = std::max(found->last_seen, time);
    return *found;
  }
  // Make room: the least recently queued live message goes first.
  while (messages_.size() >= options_.max_open_messages && !order_.empty()) {
    const queued oldest = std::move(order_.front());
    order_.pop_front();
    const auto it = messages_.find(oldest.key);
    if (it != messages_.end() && it->second.serial == oldest.serial) {
      messages_.erase(it);
      ++stats_.messages_evicted;
    }
  }
  message_state& state = messages_[key_];
  state.serial = next_serial_++;
  state.last_seen = time;
  state.instance.assign(line.instance);
  order_.push_back(queued{time, state.serial, key_});
  // Removed messages leave their queue entries behind until they would expire; compact when
  // those outnumber the live ones, so the queue stays within twice the message cap.
  if (order_.size() > 2 * options_.max_open_messages + 16) {
    std::erase_if(order_, [&](const queued& q) {
      const auto it = messages_.find(q.key);
      return it == messages_.end() || it->second.serial != q.serial;
    });
  }
  ++stats_.messages_opened;
  return state;
}

void joiner::erase(std::string_view key) {
  const auto it = messages_.find(std::string(key));
  if (it != messages_.end()) messages_.erase(it);
}

void joiner::expire(time_point now) {
  while (!order_.empty() && order_.front().at + options_.expiry <= now) {
    queued front = std::move(order_.front());
    order_.pop_front();
    const auto it = messages_.find(front.key);
    if (it == messages_.end() || it->second.serial != front.serial) continue;  // already gone
    if (it->second.last_seen + options_.expiry <= now) {
      messages_.erase(it);
      ++stats_.messages_expired;
    } else {
      // Seen since it was queued: check again one expiry after its last line.
      front.at = it->second.last_seen;
      order_.push_back(std::move(front));
    }
  }
}

bool joiner::selected(std::string_view host, std::string_view instance) const {
  return (options_.hosts.empty() || contains(options_.hosts, host)) &&
         (options_.instances.empty() || contains(options_.instances, instance));
}

bool joiner::inbound_agent(std::string_view agent) const {
  return contains(options_.delivery_agents, agent);
}

void joiner::add(time_point time, std::string_view host, const mail_line& line,
                 std::vector<message_event>& out) {
  take(time, host, line, out);
  // Expiry runs after the line is taken, so a line far ahead of the others (logs are not
  // always in order) first refreshes its own message instead of expiring it.
  if (time > newest_ + expiry_check_interval) {
    newest_ = time;
    expire(time);
  }
}

void joiner::take(time_point time, std::string_view host, const mail_line& line,
                  std::vector<message_event>& out) {
  if (line.type == line_type::reject) {
    ++stats_.rejects;
    return;
  }
  if (line.queue_id.empty()) return;
  key_.assign(host);
  key_.push_back(' ');
  key_.append(line.queue_id);

  switch (line.type) {
    case line_type::client: {
      message_state& state = open(time, line);
      state.client_address.assign(line.client_address);
      state.instance.assign(line.instance);  // the smtpd service that received it
      state.authenticated = !line.sasl_username.empty();
      state.arrival_seen = true;
      break;
    }
    case line_type::sender: {
      message_state& state = open(time, line);
      state.sender.assign(line.sender);
      state.size = line.size;
      state.arrival_seen = true;
      // Sendmail names the client on its from= line.
      if (line.origin == mta::sendmail) state.client_address.assign(line.client_address);
      break;
    }
    case line_type::message_id:
      open(time, line);
      break;
    case line_type::delivery:
      deliver(time, host, line, out);
      break;
    case line_type::removed:
      if (find() != nullptr) {
        ++stats_.messages_removed;
        erase(key_);
      }
      break;
    default:
      break;
  }
}

void joiner::deliver(time_point time, std::string_view host, const mail_line& line,
                     std::vector<message_event>& out) {
  if (line.status != delivery_status::sent && line.status != delivery_status::deferred &&
      line.status != delivery_status::bounced) {
    return;
  }
  if (!inbound_agent(line.service)) {
    ++stats_.relayed;
    if (message_state* state = find()) state->last_seen = std::max(state->last_seen, time);
    return;
  }
  message_state& state = open(time, line);
  if (!state.arrival_seen && state.counted.empty()) ++stats_.orphan_deliveries;
  if (!selected(host, state.instance)) {
    ++stats_.filtered;
    return;
  }
  const auto emit = [&](std::string_view recipient) {
    if (std::find(state.counted.begin(), state.counted.end(), recipient) != state.counted.end()) {
      ++stats_.repeated;
      return;
    }
    if (state.counted.size() < options_.max_recipients_per_message) {
      state.counted.emplace_back(recipient);
    }
    message_event event;
    event.time = time;
    event.recipient.assign(recipient);
    event.sender = state.sender;
    event.client_address = state.client_address;
    event.queue_id.assign(line.queue_id);
    event.source_host.assign(host);
    event.instance = state.instance;
    event.size = state.size;
    event.status = line.status;
    event.authenticated = state.authenticated;
    event.origin = line.origin;
    out.push_back(std::move(event));
    ++stats_.events;
  };
  if (!line.orig_to.empty()) {
    emit(line.orig_to);
  } else {
    for_each_address(line.recipients, emit);
  }
}

joiner_stats joiner::stats() const {
  joiner_stats s = stats_;
  s.open_messages = messages_.size();
  return s;
}

}  // namespace rcptguard::ingest

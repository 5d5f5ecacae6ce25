// The cluster store's thread (see cluster_service.hpp).
#include "daemon/cluster_service.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <cctype>
#include <random>
#include <utility>

#include "common/text.hpp"
#include "config/address.hpp"
#include "config/duration.hpp"
#include "daemon/sigpipe.hpp"
#include "decision/windows.hpp"

namespace rcptguard::daemon {

namespace {

// RCPTs queued for the thread beyond this are left out of the cluster's counts (and counted):
// the thread fell that far behind only when Redis is slow, not down (a down Redis fails fast).
constexpr std::size_t max_queued_events = 1'000'000;
// Recipients read each round: those with mail here in this many minutes.
constexpr std::uint32_t recent_minutes = 2;
constexpr std::chrono::milliseconds max_backoff{5000};
// A flood's id outlives the last node's episode by this much: a flood that pauses for less is
// the same flood.
constexpr std::chrono::seconds episode_id_ttl{30 * 60};
// Open episodes followed for agreement, at most (each is one key in Redis).
constexpr std::size_t max_followed_episodes = 100'000;
// Correspondence waiting for a publish, and pairs remembered as published (8 bytes and a
// hash-set node each): a pair beyond the first is counted as dropped and shared when next seen;
// beyond the second the memory starts again and pairs are published once more.
constexpr std::size_t max_pending_pairs = 200'000;
constexpr std::size_t max_remembered_pairs = 1'000'000;
// Recipients in an episode whose known correspondents are read per round, and how often again:
// a pair another node learns during the episode joins within a minute.
constexpr std::size_t correspondent_reads_per_round = 64;
constexpr std::chrono::seconds correspondent_reread{60};
// An operator's release stays in the store a day: a node that was down when it was made and
// comes back with the episode restored still ends it.
constexpr std::chrono::seconds release_ttl{24 * 3600};
// Open episodes whose release key is read per round (rotating through them all), and releases
// queued for the thread at most (each is an operator's command: a few a day).
constexpr std::size_t release_reads_per_round = 256;
constexpr std::size_t max_queued_releases = 10'000;

cluster::redis_options redis_options_from(const cluster_settings& s) {
  cluster::redis_options o;
  std::string why;
  const auto ep = parse_endpoint(s.redis, why);
  if (!ep) throw std::runtime_error("cluster.redis: " + why);
  if (ep->kind == endpoint_kind::unix_socket) {
    o.unix_path = ep->path;
  } else {
    o.host = ep->host;
    o.port = ep->port;
  }
  o.user = s.user;
  o.password = s.password;
  o.timeout = s.timeout;
  o.key_prefix = s.key_prefix;
  return o;
}

// A new one per start: this process's counts are a field of their own, so the counts of an
// earlier run of this node (restored from its own database) are never taken for another node's.
std::string incarnation() {
  std::random_device random;
  return fmt::format("{:08x}", random());
}

std::uint32_t millis(std::chrono::steady_clock::duration d) {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

std::string cluster_node_name(const cluster_settings& settings) {
  if (!settings.node.empty()) return settings.node;
  std::string host(256, '\0');
  if (::gethostname(host.data(), host.size()) != 0) return "node";
  host.resize(host.find('\0'));
  // The name is part of a key's field: the characters cluster.node allows.
  for (char& c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.')) c = '_';
  }
  return host.empty() ? "node" : host;
}

cluster_service::cluster_service(boost::asio::io_context& io, const cluster_settings& settings,
                                 std::string node, std::chrono::seconds correspondent_ttl,
                                 std::shared_ptr<spdlog::logger> log, handlers on)
    : io_(io),
      log_(std::move(log)),
      on_(std::move(on)),
      interval_(settings.interval),
      max_pull_(static_cast<std::size_t>(settings.max_pull)),
      max_correspondents_(static_cast<std::size_t>(settings.max_correspondents)),
      correspondent_ttl_(correspondent_ttl),
      node_(std::move(node)),
      field_(node_ + "/" + incarnation()),
      client_(redis_options_from(settings)),
      counts_(static_cast<std::size_t>(settings.max_keys),
              static_cast<std::uint32_t>(settings.min_count)),
      correspondence_(max_pending_pairs, max_remembered_pairs, std::random_device{}()),
      backoff_(settings.interval) {}

cluster_service::~cluster_service() {
  stop();
}

void cluster_service::start() {
  log_->info("CLUSTER node {} (field {}) sharing counts through Redis {} every {}", node_, field_,
             client_.describe(), format_duration(interval_));
  worker_.start(interval_, [this] { round(); });
}

void cluster_service::stop() {
  worker_.stop();
}

void cluster_service::collect(const decision::outbox& records) {
  if (records.deliveries.empty() && records.episodes.empty()) return;
  std::size_t dropped = 0;
  {
    const std::lock_guard lock(mutex_);
    for (const decision::delivery_record& r : records.deliveries) {
      if (queue_.size() >= max_queued_events) {
        ++dropped;
        continue;
      }
      queue_.push_back({r.recipient, decision::unix_minute(r.at), r.sender, r.client});
      std::array<decision::correspondence, 2> pairs;
      const std::size_t n = decision::correspondence_of(r, pairs);
      for (std::size_t k = 0; k < n; ++k) {
        if (pair_queue_.size() >= max_queued_events) {
          ++dropped;
          continue;
        }
        pair_queue_.push_back({std::string{pairs[k].recipient}, std::string{pairs[k].sender},
                               decision::unix_minute(r.at)});
      }
    }
    // Episodes are few (one record per open, new peak and close).
    for (const decision::episode_record& e : records.episodes) {
      if (!e.cluster_id.empty() && !e.ended) continue;  // agreed already
      // Bounded like the counts: a thread that far behind agrees on no new ids meanwhile.
      if (episode_queue_.size() >= max_followed_episodes) {
        ++dropped;
        continue;
      }
      episode_queue_.push_back({e.recipient, e.started, e.ended});
    }
  }
  if (dropped != 0) dropped_ += dropped;
}

void cluster_service::announce_release(std::string recipient, time_point at, std::string user,
                                       std::string reason) {
  const std::lock_guard lock(mutex_);
  if (release_queue_.size() >= max_queued_releases) {
    ++dropped_;
    return;
  }
  release_queue_.push_back(
      {std::move(recipient), to_unix_seconds(at), node_, std::move(user), std::move(reason)});
}

void cluster_service::round() {
  if (!sigpipe_blocked_) {
    // hiredis writes with write(2): a Redis that went away must fail the call, not the daemon.
    block_sigpipe_on_this_thread();
    sigpipe_blocked_ = true;
  }
  std::vector<cluster::count_event> events;
  std::vector<cluster::pair_row> pairs;
  std::vector<episode_event> episode_events;
  {
    const std::lock_guard lock(mutex_);
    events.swap(queue_);
    pairs.swap(pair_queue_);
    episode_events.swap(episode_queue_);
    // Held until published, within the same bound while Redis stays away.
    for (cluster::release_note& n : release_queue_) {
      if (releases_.size() >= max_queued_releases) {
        ++dropped_;
        continue;
      }
      releases_.push_back(std::move(n));
    }
    release_queue_.clear();
  }
  for (const cluster::pair_row& p : pairs) correspondence_.add(p.recipient, p.sender, p.minute);
  for (episode_event& e : episode_events) {
    const auto found = episodes_.find(e.recipient);
    if (e.ended) {
      if (found != episodes_.end() && found->second.started == e.started) episodes_.erase(found);
    } else if (found == episodes_.end() || found->second.started != e.started) {
      if (found == episodes_.end() && episodes_.size() >= max_followed_episodes) continue;
      episodes_[std::move(e.recipient)] = episode_track{e.started, {}};
    }
  }
  const time_point now = wall_clock_now();
  const std::uint32_t minute = decision::unix_minute(now);
  for (const cluster::count_event& e : events) counts_.add(e);
  refused_full_ = counts_.stats().refused_full;
  pairs_refused_ = correspondence_.stats().refused_full;
  counts_.expire(minute);

  if (!client_.connected()) {
    if (now < next_attempt_) return;
    try {
      client_.connect();
    } catch (const cluster::redis_error& e) {
      discard_pending_sigpipe();
      failed(e.what(), now);
      return;
    }
    connected(now);
  }
  publish_and_read(minute);
}

void cluster_service::publish_and_read(std::uint32_t minute) {
  const auto began = std::chrono::steady_clock::now();
  cluster::publish_batch batch = counts_.take_changes();
  try {
    if (!batch.empty()) client_.publish(batch, field_);
    const std::vector<std::string> active = counts_.active(minute, recent_minutes, max_pull_);
    std::vector<decision::cluster_counts> others = active.empty()
                                                       ? std::vector<decision::cluster_counts>{}
                                                       : client_.pull(active, node_ + "/", minute);
    const time_point read_at = wall_clock_now();
    published_ += batch.minutes.size() + batch.hours.size() + batch.senders.size() +
                  batch.epoch_senders.size() + batch.clients.size();
    pulled_ += others.size();
    ++rounds_;
    const std::uint32_t took = millis(std::chrono::steady_clock::now() - began);
    last_round_ms_ = took;
    if (took > max_round_ms_) max_round_ms_ = took;
    if (!others.empty()) {
      boost::asio::post(io_, [deliver = on_.deliver, others = std::move(others),
                              read_at]() mutable { deliver(std::move(others), read_at); });
    }
    share_correspondents();
    if (!releases_.empty()) {
      client_.publish_releases(releases_, release_ttl);
      releases_shared_ += releases_.size();
      releases_.clear();
    }
    agree_on_episodes();
    read_correspondents(read_at);
    read_releases();
  } catch (const cluster::redis_error& e) {
    counts_.give_back(std::move(batch));
    discard_pending_sigpipe();
    failed(e.what(), wall_clock_now());
  }
}

void cluster_service::share_correspondents() {
  std::vector<cluster::pair_row> rows = correspondence_.take();
  if (rows.empty()) return;
  try {
    const auto shared = client_.share_correspondents(rows, max_correspondents_, correspondent_ttl_);
    correspondents_shared_ += shared.added;
    correspondents_refused_ += shared.refused_full;
  } catch (const cluster::redis_error&) {
    correspondence_.give_back(std::move(rows));
    throw;
  }
}

void cluster_service::read_correspondents(time_point now) {
  std::vector<std::string> due;
  for (const auto& [recipient, track] : episodes_) {
    if (due.size() >= correspondent_reads_per_round) break;
    if (now - track.correspondents_read >= correspondent_reread) due.push_back(recipient);
  }
  if (due.empty()) return;
  std::vector<decision::known_senders> known =
      client_.read_correspondents(due, max_correspondents_);
  std::size_t senders = 0;
  for (const std::string& recipient : due) episodes_[recipient].correspondents_read = now;
  for (const decision::known_senders& k : known) senders += k.senders.size();
  correspondents_read_ += senders;
  boost::asio::post(io_, [take = on_.correspondents, known = std::move(known), now]() mutable {
    take(std::move(known), now);
  });
}

void cluster_service::read_releases() {
  if (episodes_.empty()) return;
  std::vector<std::string> due;
  auto it = episodes_.upper_bound(release_cursor_);
  while (due.size() < std::min(release_reads_per_round, episodes_.size())) {
    if (it == episodes_.end()) it = episodes_.begin();
    due.push_back(it->first);
    ++it;
  }
  release_cursor_ = due.back();
  const std::vector<std::optional<cluster::release_note>> notes = client_.read_releases(due);
  for (std::size_t k = 0; k < due.size(); ++k) {
    if (!notes[k] || notes[k]->node == node_) continue;
    episode_track& track = episodes_[due[k]];
    // Only a release made after this node's episode opened ends it: a flood that went on (or
    // came back) after the release opened a new episode, which the release did not judge. In
    // whole seconds, as the note has them: the same second counts as after.
    if (notes[k]->at < to_unix_seconds(track.started) || track.release_applied == notes[k]->at) {
      continue;
    }
    track.release_applied = notes[k]->at;
    ++releases_taken_;
    boost::asio::post(
        io_, [released = on_.released, note = *notes[k]]() mutable { released(std::move(note)); });
  }
}

void cluster_service::agree_on_episodes() {
  std::vector<cluster::redis_client::episode_claim> claims;
  std::vector<std::string> open;
  for (const auto& [recipient, track] : episodes_) {
    if (track.id.empty()) {
      claims.push_back({recipient, node_ + ":" + std::to_string(to_unix_seconds(track.started))});
    } else {
      open.push_back(recipient);
    }
  }
  if (claims.empty() && open.empty()) return;
  const std::vector<std::string> ids = client_.claim_episodes(claims, open, episode_id_ttl);
  for (std::size_t k = 0; k < claims.size(); ++k) {
    episode_track& track = episodes_[claims[k].recipient];
    track.id = ids[k];
    boost::asio::post(
        io_, [episode = on_.episode, recipient = claims[k].recipient, started = track.started,
              id = ids[k]]() mutable { episode(std::move(recipient), started, std::move(id)); });
  }
}

void cluster_service::connected(time_point now) {
  connected_ = true;
  backoff_ = interval_;
  if (lost_reported_) {
    log_->info(
        "CLUSTER BACK: Redis {} answers again after {}; publishing this node's counts "
        "again, the other nodes' counts join verdicts from the next read",
        client_.describe(),
        format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(now - lost_at_)));
    counts_.mark_all_changed();
    // A Redis restarted without persistence lost them: shared again as they are next seen,
    // and read again for the episodes open here.
    correspondence_.forget_published();
    for (auto& [recipient, track] : episodes_) track.correspondents_read = {};
  } else if (!ever_connected_) {
    log_->info("CLUSTER CONNECTED to Redis {} as {}", client_.describe(), field_);
  }
  ever_connected_ = true;
  lost_reported_ = false;
}

void cluster_service::failed(const std::string& what, time_point now) {
  ++faults_;
  const bool was_connected = connected_.exchange(false);
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff);
  if (lost_reported_) return;
  lost_reported_ = true;
  lost_at_ = now;
  log_->warn(
      "CLUSTER LOST: Redis {}: {}; verdicts use this node's counts until it is back "
      "(retrying every {} at most)",
      client_.describe(), printable(what), format_duration(max_backoff));
  if (was_connected || !ever_connected_) {
    boost::asio::post(io_, [lost = on_.lost, now] { lost(now); });
  }
}

cluster_service_stats cluster_service::stats() const {
  cluster_service_stats s;
  s.connected = connected_;
  s.rounds = rounds_;
  s.faults = faults_;
  s.published = published_;
  s.pulled = pulled_;
  s.refused_full = refused_full_;
  s.dropped = dropped_;
  s.correspondents_shared = correspondents_shared_;
  s.correspondents_refused = correspondents_refused_ + pairs_refused_;
  s.correspondents_read = correspondents_read_;
  s.releases_shared = releases_shared_;
  s.releases_taken = releases_taken_;
  s.last_round_ms = last_round_ms_;
  s.max_round_ms = max_round_ms_;
  return s;
}

}  // namespace rcptguard::daemon

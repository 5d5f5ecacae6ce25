// The daemon's followed mail logs (see mail_log_service.hpp).
#include "daemon/mail_log_service.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/core.h>
#include <sys/stat.h>

#include <exception>
#include <utility>

#include "config/duration.hpp"
#include "config/options.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"

namespace rcptguard::daemon {

namespace {

// Events a batch carries before it is queued, so the network thread sees progress while the
// reader works through a backlog.
constexpr std::size_t batch_events = 4096;
// A stale-event warning at most this often; the counts say how many were skipped meanwhile.
constexpr std::chrono::minutes stale_log_interval{1};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return printable(out.empty() ? std::string{"any"} : out);
}

}  // namespace

mail_log_service::mail_log_service(ingest_settings settings, std::string database,
                                   std::shared_ptr<spdlog::logger> log)
    : database_(std::move(database)), log_(std::move(log)), settings_(std::move(settings)) {}

mail_log_service::~mail_log_service() {
  halt_reader();
}

void mail_log_service::halt_reader() {
  worker_.request_stop();
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  space_.notify_all();  // a reader waiting for queue space gives up its batch
  worker_.stop();
}

void mail_log_service::open(time_point now) {
  SQLite::Database db = store::open_read_only(database_);
  store::ingest_positions positions(db);
  for (const std::string& path : settings_.files) {
    auto f = std::make_unique<ingest::follower>(path, settings_.max_line);
    std::optional<ingest::follow_position> saved;
    if (const auto row = positions.load(path)) {
      saved = ingest::follow_position{row->device, row->inode, row->offset};
    }
    f->start(saved, false);
    // The starting point counts as fed: nothing before it is read again.
    fed_.push_back(saved);
    followers_.push_back(std::move(f));
  }
  handed_ = fed_;
  reader_ = std::make_unique<mail_log_reader>(timestamp_options_from(settings_, now),
                                              joiner_options_from(settings_));
  log_->info("INGEST following {} (instances: {}; hosts: {}) every {}", joined(settings_.files),
             joined(settings_.instances), joined(settings_.hosts),
             format_duration(settings_.poll_interval));
  worker_.start(settings_.poll_interval, [this] {
    try {
      read_round();
    } catch (const std::exception& e) {
      // The parsers do not throw on bad input; this is memory or a bug. The next round retries.
      log_->error("INGEST read failed: {}", printable(e.what()));
    }
  });
}

void mail_log_service::read_round() {
  // The lag, measured here and not on the network thread: one stat() per file per round.
  std::uint64_t unread = 0;
  for (const auto& f : followers_) {
    struct stat st {};
    if (::stat(f->path().c_str(), &st) != 0) continue;
    const ingest::follow_position at = f->position();
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const bool same_file = static_cast<std::uint64_t>(st.st_dev) == at.device &&
                           static_cast<std::uint64_t>(st.st_ino) == at.inode;
    if (!same_file) {
      unread += size;  // rotated: what is left of the old file is not known here
    } else if (size > at.offset) {
      unread += size - at.offset;
    }
  }
  {
    const std::lock_guard lock(mutex_);
    stats_.unread_bytes = unread;
  }
  batch current;
  bool stopped = false;
  const auto on_line = [&](std::string_view text) {
    if (stopped) return;  // the follower drains its read; nothing more is parsed
    reader_->add_line(text, current.events);
    // Without positions: the follower's position is only exact between its polls.
    if (current.events.size() >= batch_events) stopped = !push(std::exchange(current, {}));
  };
  for (std::size_t i = 0; i < followers_.size() && !stopped; ++i) {
    followers_[i]->poll(on_line);
    if (!stopped) current.positions.emplace_back(i, followers_[i]->position());
  }
  if (!stopped && (!current.events.empty() || !current.positions.empty())) {
    push(std::move(current));
  }
  const std::lock_guard lock(mutex_);
  stats_.lines = reader_->line_counts();
  stats_.joiner = reader_->joiner_stats();
  stats_.long_lines = stats_.rotations = stats_.truncations = 0;
  for (const auto& f : followers_) {
    stats_.long_lines += f->stats().long_lines;
    stats_.rotations += f->stats().rotations;
    stats_.truncations += f->stats().truncations;
  }
}

bool mail_log_service::push(batch&& b) {
  std::unique_lock lock(mutex_);
  // An empty batch carries positions only, and a full queue must not hold those back forever.
  space_.wait(lock,
              [&] { return stopping_ || b.events.empty() || queued_events_ < max_queued_events; });
  if (stopping_) return false;
  queued_events_ += b.events.size();
  queue_.push_back(std::move(b));
  return true;
}

void mail_log_service::poll(decision::engine& engine, time_point now) {
  std::deque<batch> taken;
  {
    const std::lock_guard lock(mutex_);
    std::size_t events = 0;
    while (!queue_.empty() && events < max_events_per_poll) {
      events += queue_.front().events.size();
      queued_events_ -= queue_.front().events.size();
      taken.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (!taken.empty()) space_.notify_all();

  const time_point oldest = now - max_event_lag;
  for (const batch& b : taken) {
    for (const ingest::message_event& e : b.events) {
      if (e.time < oldest) {
        ++stale_events_;
        continue;
      }
      if (e.time > now) ++future_events_;
      count_delivery(engine, e, std::min(e.time, now), fed_counts_);
    }
    for (const auto& [index, position] : b.positions) fed_.at(index) = position;
  }

  if (stale_events_ != stale_logged_ &&
      (!stale_log_time_ || now - *stale_log_time_ >= stale_log_interval)) {
    log_->warn(
        "INGEST skipped {} log event(s) older than {} (total {}): a backlog after a stop, or "
        "ingest.utc_offset does not match the log's time zone",
        stale_events_ - stale_logged_, format_duration(max_event_lag), stale_events_);
    stale_logged_ = stale_events_;
    stale_log_time_ = now;
  }
}

std::vector<store::followed_position> mail_log_service::take_positions() {
  std::vector<store::followed_position> moved;
  for (std::size_t i = 0; i < fed_.size(); ++i) {
    if (!fed_[i] || fed_[i] == handed_[i]) continue;
    moved.push_back(store::followed_position{followers_[i]->path(), fed_[i]->device,
                                             fed_[i]->inode, fed_[i]->offset});
    handed_[i] = fed_[i];
  }
  return moved;
}

void mail_log_service::reconfigure(const ingest_settings& settings) {
  worker_.set_interval(settings.poll_interval);
}

void mail_log_service::stop() {
  halt_reader();
  const mail_log_service_stats s = stats();
  log_->info(
      "INGEST stopped: lines {} (mail {}), events fed {}, stale {}, not selected {}, "
      "rotations {}, truncations {}",
      s.lines.lines, s.lines.mail, s.events_fed, s.stale_events, s.joiner.filtered, s.rotations,
      s.truncations);
}

mail_log_service_stats mail_log_service::stats() const {
  mail_log_service_stats s;
  {
    const std::lock_guard lock(mutex_);
    s = stats_;
    s.queued_events = queued_events_;
  }
  s.events_fed = fed_counts_.deliveries;
  s.stale_events = stale_events_;
  s.future_events = future_events_;
  return s;
}

}  // namespace rcptguard::daemon

#include "daemon/persistence.hpp"

#include <span>

#include "config/options.hpp"
#include "daemon/daemon_log.hpp"
#include "store/operator_actions.hpp"
#include "store/store.hpp"

namespace rcptguard::daemon {

namespace {

// update_histories costs ~14 us per recipient; 1,000 per pump keeps each slice near 15 ms
// while an hourly refresh of a million recipients still finishes within minutes.
constexpr std::size_t histories_per_pump = 1000;
constexpr auto history_refresh_interval = std::chrono::hours{1};

}  // namespace

persistence::persistence(boost::asio::io_context& io, const config& settings,
                         std::shared_ptr<spdlog::logger> log)
    : io_(io),
      settings_(settings.store),
      writer_options_(writer_options_from(settings)),
      log_(std::move(log)) {}

persistence::~persistence() {
  if (history_reader_.joinable()) history_reader_.join();
}

void persistence::open_and_restore(decision::engine& engine, time_point now,
                                   std::string_view node) {
  auto db = std::make_unique<store::store>(store_options_from(settings_));
  // Before the writer thread owns the connection: at start-up this thread is its only user.
  store::save_node_name(db->database(), node);
  decision::restore_snapshot snapshot = db->load_snapshot(now);
  snapshot.operator_allows = store::load_operator_allows(db->database(), now);
  snapshot.counter_resets = store::load_counter_resets(db->database(), now);
  engine.restore(snapshot, now);
  log_->info(
      "STORE {}: restored {} recipient histories, {} minute rows, {} correspondents, {} open "
      "episodes, {} operator allow entries",
      settings_.path, snapshot.histories.size(), snapshot.recent_minutes.size(),
      snapshot.correspondents.size(), snapshot.open_episodes.size(),
      snapshot.operator_allows.size());

  writer_ = std::make_unique<store::writer>(
      std::move(db), writer_options_,
      // The writer's lines carry their own tag ("STORE WRITE FAILED"), so none is added here.
      [log = log_](store::log_level level, std::string text) {
        log->log(to_spdlog(level), "{}", text);
      },
      wall_clock_now);
  next_refresh_ = now + history_refresh_interval;
}

void persistence::pump(decision::engine& engine, time_point now,
                       const std::vector<store::followed_position>& positions) {
  if (writer_ && (!engine.pending().empty() || !positions.empty())) {
    writer_->submit(std::move(engine.pending()), positions);
    engine.pending().clear();  // a moved-from vector is valid but unspecified
  }
  if (histories_fed_ < histories_.size()) {
    const std::size_t n = std::min(histories_per_pump, histories_.size() - histories_fed_);
    engine.update_histories(std::span(histories_).subspan(histories_fed_, n), now);
    histories_fed_ += n;
    if (histories_fed_ == histories_.size()) {
      log_->info("BASELINES refreshed for {} recipients", histories_.size());
      histories_.clear();
      histories_fed_ = 0;
    }
  }
  if (!refresh_running_ && histories_.empty() && now >= next_refresh_) start_history_refresh(now);
}

void persistence::start_history_refresh(time_point now) {
  if (history_reader_.joinable()) history_reader_.join();
  refresh_running_ = true;
  next_refresh_ = now + history_refresh_interval;
  // A separate read-only connection: WAL lets it read while the writer thread writes, and the
  // network thread never waits for either.
  history_reader_ = std::thread([this, now, path = settings_.path,
                                 weeks = static_cast<int>(settings_.history_weeks)] {
    std::vector<decision::recipient_history> loaded;
    std::string error;
    try {
      SQLite::Database db = store::open_read_only(path);
      loaded = store::load_histories(db, now, weeks);
    } catch (const std::exception& e) {
      error = e.what();
    }
    boost::asio::post(io_, [this, loaded = std::move(loaded), error = std::move(error)]() mutable {
      refresh_running_ = false;
      if (!error.empty()) {
        log_->error("BASELINES refresh failed: {}; keeping the current baselines", error);
        return;
      }
      histories_ = std::move(loaded);
      histories_fed_ = 0;
    });
  });
}

bool persistence::submit(store::database_job job) {
  return writer_ && writer_->submit(std::move(job));
}

void persistence::stop(decision::engine& engine,
                       const std::vector<store::followed_position>& positions) {
  if (history_reader_.joinable()) history_reader_.join();
  if (!writer_) return;
  writer_->submit(std::move(engine.pending()), positions);
  engine.pending().clear();
  writer_->stop();
  const auto stats = writer_->stats();
  log_->info(
      "STORE flushed: {} records written as {} rows in {} transactions (longest {} ms), {} "
      "dropped, {} keys folded, {} write failures",
      stats.records_written, stats.rows_written, stats.flushes,
      stats.max_flush_duration.count() / 1000, stats.records_dropped, stats.keys_folded,
      stats.write_failures);
}

store::writer_stats persistence::writer_stats() const {
  return writer_ ? writer_->stats() : store::writer_stats{};
}

}  // namespace rcptguard::daemon

// The daemon's side of persistence: opens the store before serving, hands the engine's records
// (with the followed-log positions they cover) to the store's writer thread, the one owner of
// the database's writes, passes it the spool scanner's rows, and refreshes the engine's
// baselines from the database every hour on a short-lived read-only thread. The network thread
// never calls SQLite.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "decision/engine.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

class persistence {
 public:
  persistence(boost::asio::io_context& io, const config& settings,
              std::shared_ptr<spdlog::logger> log);
  persistence(const persistence&) = delete;
  persistence& operator=(const persistence&) = delete;
  ~persistence();

  /// Opens (creating and migrating) the database, names `node` as its writer, restores `engine`
  /// from it and starts the writer thread. Throws std::exception with the reason when the
  /// database cannot be used.
  void open_and_restore(decision::engine& engine, time_point now, std::string_view node);

  /// Moves the engine's pending records to the writer, with the positions of the followed logs
  /// whose events they include (committed in the same transaction), and feeds refreshed
  /// histories to the engine a slice at a time. Called from the network thread's housekeeping
  /// timer.
  void pump(decision::engine& engine, time_point now,
            const std::vector<store::followed_position>& positions = {});

  /// Other writes for the writer's thread (a spool scan's rows); false once stopped.
  bool submit(store::database_job job);

  /// Final hand-over and flush, at shutdown.
  void stop(decision::engine& engine, const std::vector<store::followed_position>& positions = {});

  store::writer_stats writer_stats() const;

 private:
  void start_history_refresh(time_point now);

  boost::asio::io_context& io_;
  store_settings settings_;
  store::writer_options writer_options_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<store::writer> writer_;
  std::thread history_reader_;
  std::vector<decision::recipient_history> histories_;  ///< waiting to be fed to the engine
  std::size_t histories_fed_ = 0;
  bool refresh_running_ = false;
  time_point next_refresh_;
};

}  // namespace rcptguard::daemon

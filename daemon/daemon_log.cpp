#include "daemon/daemon_log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

#include <stdexcept>

namespace rcptguard::daemon {

std::shared_ptr<spdlog::logger> make_logger(const log_settings& settings) {
  const std::string& file = settings.file;
  spdlog::sink_ptr sink;
  switch (settings.target) {
    case log_target::stderr_stream:
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      break;
    case log_target::syslog:
      // syslog adds its own time stamp and the program name.
      sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("rcptguard", LOG_PID, LOG_MAIL, false);
      break;
    case log_target::file:
      try {
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
      } catch (const spdlog::spdlog_ex& e) {
        throw std::runtime_error("cannot open log file " + file + ": " + e.what());
      }
      break;
  }
  auto logger = std::make_shared<spdlog::logger>("rcptguard", std::move(sink));
  logger->set_pattern(settings.target == log_target::syslog
                          ? "%l: %v"
                          : "%Y-%m-%dT%H:%M:%S.%e%z rcptguard[%P]: %l: %v");
  logger->set_level(to_spdlog(settings.level));
  // Warnings and errors reach the file at once; routine lines may sit in the buffer briefly.
  logger->flush_on(spdlog::level::warn);
  return logger;
}

spdlog::level::level_enum to_spdlog(log_level level) {
  switch (level) {
    case log_level::trace:
      return spdlog::level::trace;
    case log_level::debug:
      return spdlog::level::debug;
    case log_level::info:
      return spdlog::level::info;
    case log_level::warn:
      return spdlog::level::warn;
    case log_level::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

spdlog::level::level_enum to_spdlog(store::log_level level) {
  switch (level) {
    case store::log_level::info:
      return spdlog::level::info;
    case store::log_level::warning:
      return spdlog::level::warn;
    case store::log_level::error:
      return spdlog::level::err;
  }
  return spdlog::level::err;
}

}  // namespace rcptguard::daemon

#include "config/options.hpp"

#include "common/text.hpp"

namespace rcptguard {

ingest::joiner_options joiner_options_from(const ingest_settings& settings) {
  ingest::joiner_options options;
  options.max_open_messages = settings.max_open_messages;
  options.expiry = settings.message_expiry;
  options.delivery_agents = settings.delivery_agents;
  options.hosts = settings.hosts;
  options.instances = settings.instances;
  return options;
}

ingest::timestamp_options timestamp_options_from(const ingest_settings& settings,
                                                 time_point reference) {
  ingest::timestamp_options options;
  options.reference = reference;
  if (!settings.utc_offset.empty()) {
    options.utc_offset = ingest::parse_utc_offset(settings.utc_offset);
    if (!options.utc_offset) {
      throw std::invalid_argument("ingest.utc_offset '" + sanitize_for_log(settings.utc_offset) +
                                  "' is not an offset such as +01:00");
    }
  }
  return options;
}

scanner::scan_options scan_options_from(const spool_settings& settings) {
  scanner::scan_options options;
  options.roots.assign(settings.roots.begin(), settings.roots.end());
  options.virtual_roots.assign(settings.virtual_roots.begin(), settings.virtual_roots.end());
  options.virtual_owners = settings.virtual_owner;
  options.domains = settings.domains;
  for (const std::string& text : settings.map) {
    auto entry = scanner::parse_mapping(text);
    if (!entry) {
      throw std::invalid_argument("spool.map entry '" + sanitize_for_log(text) +
                                  "' is not USER=ADDRESS or /PATH=ADDRESS");
    }
    options.mapping.push_back(std::move(*entry));
  }
  options.evidence.min_repeats = settings.min_repeats;
  options.evidence.window = settings.window;
  options.retention = settings.retention;
  options.check_owner = settings.check_owner;
  options.limits.max_message_bytes = settings.max_message_bytes;
  options.limits.max_header_bytes = settings.max_header_bytes;
  options.limits.max_mime_depth = settings.max_mime_depth;
  options.limits.max_mime_parts = settings.max_mime_parts;
  options.limits.max_time_per_file = settings.max_time_per_file;
  return options;
}

store::store_options store_options_from(const store_settings& settings) {
  store::store_options options;
  options.database.path = settings.path;
  options.history_weeks = static_cast<int>(settings.history_weeks);
  return options;
}

store::writer_options writer_options_from(const config& settings) {
  store::writer_options options;
  options.max_pending_keys = settings.store.max_pending_keys;
  options.flush_interval = settings.store.flush_interval;
  options.nice = settings.store.writer_nice;
  options.retention = std::chrono::duration_cast<std::chrono::seconds>(settings.store.retention);
  options.prune_interval =
      std::chrono::duration_cast<std::chrono::seconds>(settings.store.prune_interval);
  options.spool_retention = settings.spool.retention;
  return options;
}

}  // namespace rcptguard

// The settings as the options structs of the libraries that use them. The settings table is the
// one source of defaults; these adapters only copy, so the daemon and the commands (`scan`,
// `ingest`) configure the scanner, the log readers and the store the same way.
#pragma once

#include <stdexcept>

#include "common/time.hpp"
#include "config/config.hpp"
#include "ingest/joiner.hpp"
#include "ingest/timestamp.hpp"
#include "scanner/scanner.hpp"
#include "store/store.hpp"
#include "store/writer.hpp"

namespace rcptguard {

/// [ingest] as joiner options (the table took its defaults from ingest::joiner_options).
ingest::joiner_options joiner_options_from(const ingest_settings& settings);

/// ingest.utc_offset as timestamp options for a live log (the year inferred from `reference`).
/// The offset was validated when the settings loaded; one that still does not parse throws
/// std::invalid_argument.
ingest::timestamp_options timestamp_options_from(const ingest_settings& settings,
                                                 time_point reference);

/// [spool] as scanner options. Map entries were validated when the settings loaded; one that
/// still does not parse throws std::invalid_argument naming it.
scanner::scan_options scan_options_from(const spool_settings& settings);

/// [store] as the store's options (the database and the history it loads).
store::store_options store_options_from(const store_settings& settings);

/// [store] (and spool.retention) as the writer thread's options: batching, retention, pruning.
store::writer_options writer_options_from(const config& settings);

}  // namespace rcptguard

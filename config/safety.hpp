// Settings that are valid but unsafe: check-config prints them as warnings and the daemon logs
// them at start-up. Pure: the file descriptor limit is an input, read by the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace rcptguard {

/// Descriptors the daemon holds besides its connections: listeners, the database and its WAL,
/// log files, followed mail logs, the mailbox being scanned, alert command pipes, and the one
/// held back to refuse connections at EMFILE.
inline constexpr std::size_t descriptors_besides_connections = 64;

/// Descriptors the daemon needs with `c`: every connection plus the rest.
std::size_t descriptors_needed(const config& c);

/// One sentence per unsafe setting, naming the key and what to do. `file_limit` is the most
/// descriptors the process can open (the hard RLIMIT_NOFILE, which the daemon raises its soft
/// limit to when needed).
std::vector<std::string> unsafe_settings(const config& c, std::uint64_t file_limit);

}  // namespace rcptguard

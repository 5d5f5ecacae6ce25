// `rcptguard review`: reads the store's database (read-only) and prints alerts, one recipient's
// story or the busiest recipients, as an aligned table for people or JSON Lines for a SIEM.
// Exit codes: 0 success, 1 failure (database missing or unreadable, invalid configuration),
// 2 usage error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "common/time.hpp"

namespace rcptguard::cli {

enum class review_view : std::uint8_t { alerts, recipient, top };
enum class review_format : std::uint8_t { table, json };

/// A parsed review request; what the argv front end hands run_review().
struct review_args {
  review_view view = review_view::alerts;
  std::string database;   ///< opened read-only, never created
  std::string recipient;  ///< recipient view: the normalised key, as the engine stores it
  std::chrono::seconds since{std::chrono::hours{24 * 7}};  ///< how far back from `now`
  std::size_t limit = 50;  ///< alerts and top: rows; recipient: verdicts
  review_format format = review_format::table;
  time_point now{};  ///< the end of the reviewed span
};

/// Runs one query and prints it to `out`; problems go to `err`. Returns 0, or 1 when the
/// database is missing or cannot be read.
int run_review(const review_args& args, std::FILE* out, std::FILE* err);

/// Where command_review() writes, and its clock; the defaults are the process's.
struct review_io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  std::optional<time_point> now;  ///< empty: the system clock
};

/// `rcptguard review SUBCOMMAND [options]`; argv[0] is "review". Parses the options, finds the
/// database (-d, else store.path of the settings chosen by -c/-o as for `serve`) and calls
/// run_review(). Never throws.
int command_review(int argc, char** argv, const review_io& io);
int command_review(int argc, char** argv);

}  // namespace rcptguard::cli

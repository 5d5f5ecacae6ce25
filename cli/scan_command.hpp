// `rcptguard scan`: one scan of the mail spool, printed per mailbox (messages, attachments,
// repeated hashes with counts), and stored with its state in the database when one is given,
// so the next scan (or the daemon) resumes from it.
// Exit codes: 0 success (refused mailboxes are reported, not failures), 1 failure (database or
// configuration unusable), 2 usage error.
#pragma once

#include <cstdio>
#include <optional>

#include "common/time.hpp"

namespace rcptguard::cli {

/// Where command_scan() writes, and its clock; the defaults are the process's.
struct scan_io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  std::optional<time_point> now;  ///< empty: the system clock
};

/// argv[0] is "scan". Never throws.
int command_scan(int argc, char** argv, const scan_io& io);
int command_scan(int argc, char** argv);

}  // namespace rcptguard::cli

// Which recipient a mailbox belongs to, and which spool roots to walk. A file in a spool root is
// named after the local user (Postfix local(8): mail_spool_directory/<user>); combined with each
// configured local domain it gives the addresses the policy server sees (bob + example.test ->
// bob@example.test). An explicit table maps a user or an absolute mailbox path to addresses for
// virtual mailboxes and aliases, and overrides the domain rule for that mailbox.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard::scanner {

struct mapping_entry {
  std::string key;      ///< local user name, or an absolute mailbox path
  std::string address;  ///< recipient address
};

/// "user=address" or "/path/to/mailbox=address"; empty when malformed.
std::optional<mapping_entry> parse_mapping(std::string_view text);

class recipient_mapper {
 public:
  recipient_mapper(std::vector<std::string> domains, std::vector<mapping_entry> entries);

  /// Addresses of the mailbox `path` whose file (or Maildir) name is `user`; never empty (the
  /// bare user name when there is neither a mapping nor a domain).
  std::vector<std::string> recipients_for(std::string_view user, std::string_view path) const;

  /// Mailboxes named by path in the table; scanned even when outside the roots.
  std::vector<std::string> explicit_paths() const;

 private:
  std::vector<std::string> domains_;
  std::vector<mapping_entry> entries_;
};

/// Who owns the mailboxes of a spool root (scan_options::check_owner says what is checked).
enum class root_layout : std::uint8_t {
  local,             ///< local(8) spool: each mailbox belongs to the user it is named after
  virtual_mailboxes  ///< virtual(8), Dovecot: every mailbox belongs to the virtual owner(s)
};

struct spool_root {
  std::filesystem::path path;
  root_layout layout = root_layout::local;
  /// The directory's identity, filled in by distinct_roots().
  dev_t device = 0;
  ino_t inode = 0;
};

/// Roots in order with duplicates removed, compared by the directory's device and inode, so
/// /var/mail and /var/spool/mail count once when one links to the other (the first one listed
/// is kept, with its layout). Roots that do not exist are dropped with a note.
std::vector<spool_root> distinct_roots(const std::vector<spool_root>& roots,
                                       std::vector<std::string>& notes);

}  // namespace rcptguard::scanner

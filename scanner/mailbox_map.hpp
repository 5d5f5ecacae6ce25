// Which recipient a mailbox belongs to, and which spool roots to walk. A file in a spool root is
// named after the local user (Postfix local(8): mail_spool_directory/<user>); combined with each
// configured local domain it gives the addresses the policy server sees (bob + example.test ->
// bob@example.test). An explicit table maps a user or an absolute mailbox path to addresses for
// virtual mailboxes and aliases, and overrides the domain rule for that mailbox.
#pragma once

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

/// Roots in order with duplicates removed, compared by the directory's device and inode, so
/// /var/mail and /var/spool/mail count once when one links to the other. Roots that do not
/// exist are dropped with a note.
std::vector<std::filesystem::path> distinct_roots(const std::vector<std::filesystem::path>& roots,
                                                  std::vector<std::string>& notes);

}  // namespace rcptguard::scanner

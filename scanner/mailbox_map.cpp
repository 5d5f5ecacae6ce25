// Mailbox -> recipient mapping and root de-duplication.
#include "scanner/mailbox_map.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "common/text.hpp"

namespace rcptguard::scanner {

std::optional<mapping_entry> parse_mapping(std::string_view text) {
  const std::size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) return std::nullopt;
  mapping_entry entry{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
  if (entry.address.find('@') == std::string::npos) return std::nullopt;
  return entry;
}

recipient_mapper::recipient_mapper(std::vector<std::string> domains,
                                   std::vector<mapping_entry> entries)
    : domains_(std::move(domains)), entries_(std::move(entries)) {}

std::vector<std::string> recipient_mapper::recipients_for(std::string_view user,
                                                          std::string_view path) const {
  std::vector<std::string> out;
  for (const mapping_entry& e : entries_) {
    if (e.key == path || e.key == user) out.push_back(e.address);
  }
  if (!out.empty()) return out;
  for (const std::string& domain : domains_) {
    out.push_back(std::string(user) + "@" + ascii_lower(domain));
  }
  if (out.empty()) out.emplace_back(user);
  return out;
}

std::vector<std::string> recipient_mapper::explicit_paths() const {
  std::vector<std::string> out;
  for (const mapping_entry& e : entries_) {
    if (!e.key.empty() && e.key.front() == '/' &&
        std::find(out.begin(), out.end(), e.key) == out.end()) {
      out.push_back(e.key);
    }
  }
  return out;
}

std::vector<spool_root> distinct_roots(const std::vector<spool_root>& roots,
                                       std::vector<std::string>& notes) {
  std::vector<spool_root> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const spool_root& root : roots) {
    struct stat st {};
    // A root is the administrator's choice, so it may itself be a symlink (/var/mail ->
    // spool/mail); entries inside it are never followed.
    if (::stat(root.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      notes.push_back(root.path.string() + ": not a directory, skipped");
      continue;
    }
    if (!seen.insert({st.st_dev, st.st_ino}).second) {
      notes.push_back(root.path.string() + ": same directory as an earlier root, skipped");
      continue;
    }
    out.push_back(spool_root{root.path, root.layout, st.st_dev, st.st_ino});
  }
  return out;
}

}  // namespace rcptguard::scanner

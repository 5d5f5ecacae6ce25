// One scan: roots -> mailboxes (mbox files, Maildirs) -> new messages -> MIME records ->
// evidence. Every mailbox is opened through safe_open; every message goes through the bounds of
// scan_limits; a refusal or a skipped message is reported, never thrown.
#include "scanner/scanner.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <set>
#include <utility>

#include "scanner/maildir.hpp"
#include "scanner/safe_open.hpp"
#include "scanner/sha256.hpp"

namespace rcptguard::scanner {
namespace {

using steady = std::chrono::steady_clock;

bool pread_exact(int fd, std::uint64_t offset, std::size_t length, std::string& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t got =
        ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

bool is_lock_or_temp_name(std::string_view name) {
  return name.front() == '.' || (name.size() > 5 && name.substr(name.size() - 5) == ".lock");
}

class scan_run {
 public:
  scan_run(const scan_options& options, scan_state& state, time_point now)
      : options_(options), state_(state), now_(now), mapper_(options.domains, options.mapping) {
    report_.at = now;
  }

  scan_report run() {
    if (options_.check_owner && !options_.virtual_roots.empty()) resolve_virtual_owners();
    // Virtual roots first: a directory listed as both is read with the rule that was asked for
    // explicitly, not with the default roots' one.
    std::vector<spool_root> listed;
    for (const auto& root : options_.virtual_roots) {
      listed.push_back({root, root_layout::virtual_mailboxes});
    }
    for (const auto& root : options_.roots) listed.push_back({root, root_layout::local});
    roots_ = distinct_roots(listed, report_.notes);
    for (const spool_root& root : roots_) scan_root(root.path, root.layout);
    for (const std::string& path : mapper_.explicit_paths()) scan_explicit(path);
    return std::move(report_);
  }

 private:
  void resolve_virtual_owners() {
    std::string unknown;
    for (const std::string& owner : options_.virtual_owners) {
      if (const auto uid = owner_uid(owner)) {
        virtual_uids_.push_back(*uid);
        continue;
      }
      report_.notes.push_back("virtual owner '" + owner + "' is not a user");
      unknown += (unknown.empty() ? "" : ", ") + owner;
    }
    if (!virtual_uids_.empty()) return;
    no_virtual_owner_ =
        unknown.empty()
            ? "a virtual mailbox, but no virtual owner is configured; refused"
            : "a virtual mailbox, but its owner (" + unknown + ") is not a user; refused";
  }

  // A mapped path inside a virtual root is a virtual mailbox: Dovecot keeps
  // /var/vmail/DOMAIN/USER/Maildir below where the root's listing reaches, so the map names it.
  // Compared by directory identity, so the path may be spelled through a symlink.
  root_layout layout_of(const std::filesystem::path& dir) const {
    if (options_.virtual_roots.empty()) return root_layout::local;
    for (std::filesystem::path p = dir;; p = p.parent_path()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0) {
        for (const spool_root& root : roots_) {
          if (root.layout == root_layout::virtual_mailboxes && root.device == st.st_dev &&
              root.inode == st.st_ino) {
            return root_layout::virtual_mailboxes;
          }
        }
      }
      if (p == p.parent_path()) return root_layout::local;
    }
  }

  void scan_root(const std::filesystem::path& root, root_layout layout) {
    // The root itself may be a symlink chosen by the administrator; entries are not followed.
    const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      report_.notes.push_back(root.string() + ": cannot open");
      return;
    }
    unique_fd root_fd(fd);
    const int list_fd = ::dup(fd);
    DIR* dir = list_fd >= 0 ? ::fdopendir(list_fd) : nullptr;
    if (dir == nullptr) {
      if (list_fd >= 0) ::close(list_fd);
      report_.notes.push_back(root.string() + ": cannot list");
      return;
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string_view name = entry->d_name;
      if (name.empty() || is_lock_or_temp_name(name)) continue;
      if (names.size() >= options_.limits.max_entries_per_directory) {
        report_.notes.push_back(root.string() + ": more entries than max_entries_per_directory");
        break;
      }
      names.emplace_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      scan_entry(root_fd.get(), name, (root / name).string(), layout);
    }
  }

  void scan_explicit(const std::string& path) {
    if (visited_.count(path) != 0) return;
    const std::filesystem::path p(path);
    const std::filesystem::path parent = p.parent_path();
    std::string name = p.filename().string();
    if (name.empty()) name = p.parent_path().filename().string();  // "/x/bob/" is a Maildir
    const std::filesystem::path dir = p.filename().empty() ? parent.parent_path() : parent;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      report_.notes.push_back(path + ": parent directory cannot be opened");
      return;
    }
    unique_fd dir_fd(fd);
    scan_entry(dir_fd.get(), name, (dir / name).string(), layout_of(dir));
  }

  void scan_entry(int dir_fd, const std::string& name, const std::string& path,
                  root_layout layout) {
    if (!visited_.insert(path).second) return;
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (S_ISDIR(st.st_mode)) {
      std::string refusal;
      unique_fd maildir_fd = open_directory_at(dir_fd, name.c_str(), refusal);
      if (maildir_fd && looks_like_maildir(maildir_fd.get())) {
        scan_maildir(maildir_fd.get(), name, path, layout);
      }
      return;
    }
    scan_mbox(dir_fd, name, path, layout);
  }

  open_policy policy_for(const std::string& user, root_layout layout) const {
    open_policy policy;
    policy.probe_lock = options_.probe_lock;
    if (!options_.check_owner) return policy;
    if (layout == root_layout::virtual_mailboxes) {
      policy.expected_uids = virtual_uids_;
      policy.owner_rule = "a virtual mailbox owner";
    } else if (const auto uid = local_user_uid(user)) {
      policy.expected_uids = {*uid};
      policy.owner_rule = "the local user it is named after";
    }
    return policy;
  }

  // An empty owner list would let open_policy accept any owner: a virtual mailbox whose owners
  // are all unknown is refused instead of being read unchecked.
  bool refused_for_want_of_owner(file_report& file, root_layout layout) const {
    if (!options_.check_owner || layout != root_layout::virtual_mailboxes ||
        !virtual_uids_.empty()) {
      return false;
    }
    file.refused = no_virtual_owner_;
    return true;
  }

  file_report& new_report(const std::string& path, const std::string& user, mailbox_kind kind) {
    file_report& file = report_.files.emplace_back();
    file.path = path;
    file.kind = kind;
    file.recipients = mapper_.recipients_for(user, path);
    return file;
  }

  // Reasons to read an mbox again from 0; empty when the new bytes follow the old ones.
  std::string restart_reason(int fd, const struct stat& st, const file_state& known,
                             std::uint64_t& verify_bytes) {
    if (known.inode == 0) return {};
    if (known.device != static_cast<std::uint64_t>(st.st_dev) ||
        known.inode != static_cast<std::uint64_t>(st.st_ino)) {
      return "replaced";
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < known.offset) return "truncated";
    std::string bytes;
    if (known.prefix_length > 0) {
      if (!pread_exact(fd, 0, known.prefix_length, bytes)) return "rewritten";
      verify_bytes += bytes.size();
      if (to_hex(sha256_of(bytes)) != known.prefix_sha256) return "rewritten";
    }
    if (known.anchor_length > 0) {
      if (!pread_exact(fd, known.offset - known.anchor_length, known.anchor_length, bytes)) {
        return "rewritten";
      }
      verify_bytes += bytes.size();
      if (to_hex(sha256_of(bytes)) != known.anchor_sha256) return "rewritten";
    }
    // What follows a complete message must be the next message's separator.
    if (size > known.offset) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(5, size - known.offset));
      if (!pread_exact(fd, known.offset, n, bytes)) return "rewritten";
      verify_bytes += bytes.size();
      if (std::string_view("From ").substr(0, n) != bytes) return "rewritten";
    }
    return {};
  }

  void remember_identity(int fd, const struct stat& st, std::uint64_t offset, file_state& known,
                         std::uint64_t& verify_bytes) {
    known.device = static_cast<std::uint64_t>(st.st_dev);
    known.inode = static_cast<std::uint64_t>(st.st_ino);
    known.size = static_cast<std::uint64_t>(st.st_size);
    known.scanned_at = now_;
    std::string bytes;
    const auto prefix = static_cast<std::uint32_t>(std::min<std::uint64_t>(identity_bytes, offset));
    if (prefix != known.prefix_length && pread_exact(fd, 0, prefix, bytes)) {
      verify_bytes += bytes.size();
      known.prefix_length = prefix;
      known.prefix_sha256 = to_hex(sha256_of(bytes));
    }
    const auto anchor = static_cast<std::uint32_t>(std::min<std::uint64_t>(identity_bytes, offset));
    if (offset != known.offset || anchor != known.anchor_length) {
      if (pread_exact(fd, offset - anchor, anchor, bytes)) {
        verify_bytes += bytes.size();
        known.anchor_length = anchor;
        known.anchor_sha256 = to_hex(sha256_of(bytes));
      }
    }
    known.offset = offset;
  }

  void reset(const std::string& path, mailbox_state& box) {
    box.mbox = file_state{};
    box.maildir_files.clear();
    box.messages.clear();
    box.attachments.clear();
    report_.restarted_mailboxes.push_back(path);
  }

  void scan_mbox(int dir_fd, const std::string& name, const std::string& path, root_layout layout) {
    file_report& file = new_report(path, name, mailbox_kind::mbox);
    if (refused_for_want_of_owner(file, layout)) return;
    open_result opened = safe_open_at(dir_fd, name.c_str(), policy_for(name, layout));
    if (!opened.file) {
      file.refused = opened.refusal;
      return;
    }
    const int fd = opened.file->fd.get();
    const struct stat& st = opened.file->status;
    file.warning = opened.file->warning;
    file.writer_active = !opened.file->quiescent;
    mailbox_state& box = state_.mailboxes[path];
    box.kind = mailbox_kind::mbox;
    std::uint64_t verify_bytes = 0;
    file.restarted = restart_reason(fd, st, box.mbox, verify_bytes);
    if (!file.restarted.empty()) reset(path, box);

    const auto started = steady::now();
    mbox_reader reader(fd, box.mbox.offset, static_cast<std::uint64_t>(st.st_size),
                       opened.file->quiescent, options_.limits, options_.quoting);
    mbox_message message;
    while (true) {
      if (steady::now() - started >= options_.limits.max_time_per_file) {
        file.time_budget_hit = true;
        break;
      }
      if (!reader.next(message)) break;
      ++file.messages;
      if (message.oversized) {
        file.skipped.push_back({message.offset, {}, skip_reason::message_too_large});
        continue;
      }
      const message_info info = scan_message(message.content, options_.limits);
      if (info.skipped != skip_reason::none) {
        file.skipped.push_back({message.offset, {}, info.skipped});
      }
      record(path, file, box, info, message.length, 0, from_line_time(message.from_line));
    }
    if (reader.error() != 0) file.refused = "read error: errno " + std::to_string(reader.error());
    file.message_bytes_read = reader.bytes_read();
    remember_identity(fd, st, reader.complete_offset(), box.mbox, verify_bytes);
    file.bytes_read = file.message_bytes_read + verify_bytes;
    file.offset = box.mbox.offset;
    finish_mailbox(path, file, box);
  }

  void scan_maildir(int maildir_fd, const std::string& name, const std::string& path,
                    root_layout layout) {
    file_report& file = new_report(path, name, mailbox_kind::maildir);
    if (refused_for_want_of_owner(file, layout)) return;
    mailbox_state& box = state_.mailboxes[path];
    if (box.kind != mailbox_kind::maildir) {
      if (box.mbox.inode != 0) reset(path, box);
      box.kind = mailbox_kind::maildir;
    }
    const maildir_listing listing =
        list_maildir(maildir_fd, options_.limits.max_entries_per_directory);
    const open_policy policy = policy_for(name, layout);
    std::set<std::uint64_t> present;
    const auto started = steady::now();
    for (const maildir_file& entry : listing.files) {
      present.insert(entry.inode);
      if (box.maildir_files.count(entry.inode) != 0) continue;
      if (steady::now() - started >= options_.limits.max_time_per_file) {
        file.time_budget_hit = true;
        break;
      }
      std::string refusal;
      unique_fd sub = open_directory_at(maildir_fd, entry.subdir.c_str(), refusal);
      if (!sub) continue;
      open_result opened = safe_open_at(sub.get(), entry.name.c_str(), policy);
      const std::string shown = entry.subdir + "/" + entry.name;
      if (!opened.file) {
        // A new/ file moved to cur/ between listing and opening is read next scan.
        if (refusal.empty() && opened.refusal.find("No such file") == std::string::npos) {
          file.refused = shown + ": " + opened.refusal;
        }
        continue;
      }
      const struct stat& st = opened.file->status;
      const auto size = static_cast<std::uint64_t>(st.st_size);
      box.maildir_files[entry.inode] = size;
      ++file.messages;
      if (size > options_.limits.max_message_bytes) {
        file.skipped.push_back({0, shown, skip_reason::message_too_large});
        continue;
      }
      std::string content;
      if (!pread_exact(opened.file->fd.get(), 0, static_cast<std::size_t>(size), content)) continue;
      file.message_bytes_read += size;
      const message_info info = scan_message(content, options_.limits);
      if (info.skipped != skip_reason::none) file.skipped.push_back({0, shown, info.skipped});
      record(path, file, box, info, size, entry.inode,
             from_unix_seconds(static_cast<std::int64_t>(st.st_mtime)));
    }
    if (listing.complete && !file.time_budget_hit) {
      for (auto it = box.maildir_files.begin(); it != box.maildir_files.end();) {
        if (present.count(it->first) != 0) {
          ++it;
          continue;
        }
        const std::uint64_t gone = it->first;
        report_.removed_files.emplace_back(path, gone);
        std::erase_if(box.messages, [&](const message_record& m) { return m.origin == gone; });
        std::erase_if(box.attachments,
                      [&](const attachment_record& a) { return a.origin == gone; });
        it = box.maildir_files.erase(it);
      }
    }
    file.bytes_read = file.message_bytes_read;
    finish_mailbox(path, file, box);
  }

  void record(const std::string& path, file_report& file, mailbox_state& box,
              const message_info& info, std::uint64_t bytes, std::uint64_t origin,
              std::optional<time_point> local_time) {
    const time_point stored =
        info.received_at.value_or(local_time.value_or(info.date_header.value_or(now_)));
    message_record message{stored, now_, bytes, origin};
    box.messages.push_back(message);
    report_.new_messages.emplace_back(path, message);
    for (const part_record& part : info.attachments) {
      attachment_record a{path,
                          file.recipients.front(),
                          part.sha256,
                          part.filename,
                          part.content_type,
                          part.size,
                          stored,
                          now_,
                          info.message_id,
                          origin};
      box.attachments.push_back(a);
      report_.new_attachments.push_back(std::move(a));
      ++file.attachments;
    }
  }

  void finish_mailbox(const std::string& path, const file_report& file, mailbox_state& box) {
    const time_point oldest = now_ - options_.retention;
    std::erase_if(box.messages, [&](const message_record& m) { return m.stored_at < oldest; });
    std::erase_if(box.attachments,
                  [&](const attachment_record& a) { return a.stored_at < oldest; });
    while (box.messages.size() > options_.limits.max_records_per_mailbox) box.messages.pop_front();
    while (box.attachments.size() > options_.limits.max_records_per_mailbox)
      box.attachments.pop_front();
    const std::vector<attachment_record> attachments(box.attachments.begin(),
                                                     box.attachments.end());
    const std::vector<message_record> messages(box.messages.begin(), box.messages.end());
    const mailbox_evidence evidence =
        compute_evidence(attachments, messages, now_, options_.evidence);
    for (const std::string& recipient : file.recipients) {
      report_.recipients.push_back(recipient_report{recipient, path, evidence});
    }
  }

  const scan_options& options_;
  scan_state& state_;
  time_point now_;
  recipient_mapper mapper_;
  scan_report report_;
  std::set<std::string> visited_;
  std::vector<spool_root> roots_;
  std::vector<uid_t> virtual_uids_;  ///< of options_.virtual_owners, looked up for this scan
  std::string no_virtual_owner_;     ///< the refusal when virtual_uids_ is empty
};

}  // namespace

std::optional<time_point> from_line_time(std::string_view from_line) {
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::vector<std::string_view> words;
  for (std::size_t pos = 0; pos < from_line.size();) {
    const std::size_t start = from_line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) break;
    const std::size_t end = std::min(from_line.find_first_of(" \t", start), from_line.size());
    words.push_back(from_line.substr(start, end - start));
    pos = end;
  }
  // "From SENDER [Www] Mmm dd hh:mm[:ss] [zone] yyyy": find the month, then day, time, year.
  for (std::size_t i = 2; i + 2 < words.size(); ++i) {
    const auto month = std::find(months.begin(), months.end(), words[i]);
    if (month == months.end()) continue;
    std::tm tm{};
    tm.tm_mon = static_cast<int>(month - months.begin());
    int h = 0;
    int m = 0;
    int s = 0;
    const std::string day(words[i + 1]);
    const std::string clock(words[i + 2]);
    if (std::sscanf(day.c_str(), "%d", &tm.tm_mday) != 1) return std::nullopt;
    if (std::sscanf(clock.c_str(), "%d:%d:%d", &h, &m, &s) < 2) return std::nullopt;
    for (std::size_t j = i + 3; j < words.size(); ++j) {
      if (words[j].size() == 4 && std::all_of(words[j].begin(), words[j].end(),
                                              [](char c) { return c >= '0' && c <= '9'; })) {
        tm.tm_year = std::stoi(std::string(words[j])) - 1900;
        tm.tm_hour = h;
        tm.tm_min = m;
        tm.tm_sec = s;
        tm.tm_isdst = -1;
        const std::time_t t = std::mktime(&tm);  // local(8) writes local time
        if (t == static_cast<std::time_t>(-1)) return std::nullopt;
        return from_unix_seconds(static_cast<std::int64_t>(t));
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

scan_report scan_once(const scan_options& options, scan_state& state, time_point now) {
  return scan_run(options, state, now).run();
}

}  // namespace rcptguard::scanner

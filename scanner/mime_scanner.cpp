// GMime 3 glue: a memory stream over the message, the parser, a bounded walk of the part tree,
// and decoded content streamed through SHA-256. All GLib/GObject casts stay in this file.
#include "scanner/mime_scanner.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "common/text.hpp"
#include "scanner/sha256.hpp"

namespace rcptguard::scanner {
namespace {

// Chunk size for decoding; the decoded part never has to be in memory at once.
constexpr std::size_t decode_chunk = 64 * 1024;

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

/// Owns one GObject reference.
template <typename T>
class gobject_ref {
 public:
  explicit gobject_ref(T* object) : object_(object) {}
  ~gobject_ref() {
    if (object_ != nullptr) g_object_unref(object_);
  }
  gobject_ref(const gobject_ref&) = delete;
  gobject_ref& operator=(const gobject_ref&) = delete;
  T* get() const { return object_; }

 private:
  T* object_;
};

/// Cheap upper bound on the multipart and message/* parts GMime would build, counted before
/// GMime parses (its parser recurses once per level, so the count bounds its stack depth).
std::size_t container_mentions(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t slash = text.find('/'); slash != std::string_view::npos;
       slash = text.find('/', slash + 1)) {
    std::size_t end = slash;
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
    const std::string_view before = text.substr(0, end);
    auto ends_with_ci = [&](std::string_view word) {
      if (before.size() < word.size()) return false;
      const std::string_view tail = before.substr(before.size() - word.size());
      return std::equal(tail.begin(), tail.end(), word.begin(), [](char a, char b) {
        return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
      });
    };
    if (ends_with_ci("multipart") || ends_with_ci("message")) ++count;
  }
  return count;
}

/// Bytes up to the empty line that ends the top-level header block (all of it if none).
std::size_t header_block_size(std::string_view message) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t nl = message.find('\n', pos);
    if (nl == std::string_view::npos) return message.size();
    const std::string_view line = message.substr(pos, nl - pos);
    if (line.empty() || line == "\r") return pos;
    pos = nl + 1;
  }
  return message.size();
}

std::optional<time_point> to_time_point(GDateTime* date) {
  if (date == nullptr) return std::nullopt;
  return from_unix_seconds(g_date_time_to_unix(date));
}

std::optional<time_point> received_time(GMimeObject* message) {
  const char* received = g_mime_object_get_header(message, "Received");
  if (received == nullptr) return std::nullopt;
  const char* semicolon = std::strrchr(received, ';');
  if (semicolon == nullptr) return std::nullopt;
  GDateTime* date = g_mime_utils_header_decode_date(semicolon + 1);
  if (date == nullptr) return std::nullopt;
  const auto at = to_time_point(date);
  g_date_time_unref(date);
  return at;
}

class walker {
 public:
  walker(const scan_limits& limits, message_info& info) : limits_(limits), info_(info) {}

  // Returns false once a bound is hit; info_.skipped says which.
  bool walk(GMimeObject* object, unsigned depth) {
    if (object == nullptr) return true;
    if (++info_.parts > limits_.max_mime_parts) return stop(skip_reason::too_many_parts);
    if (depth > limits_.max_mime_depth) return stop(skip_reason::too_deep);
    info_.depth = std::max(info_.depth, depth);
    if (GMIME_IS_MESSAGE_PART(object)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      return inner == nullptr || walk(g_mime_message_get_mime_part(inner), depth + 1);
    }
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      const int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) {
        if (!walk(g_mime_multipart_get_part(multipart, i), depth + 1)) return false;
      }
      return true;
    }
    if (GMIME_IS_PART(object)) record(GMIME_PART(object), depth);
    return true;
  }

 private:
  bool stop(skip_reason reason) {
    info_.skipped = reason;
    return false;
  }

  void record(GMimePart* part, unsigned depth) {
    GMimeObject* object = GMIME_OBJECT(part);
    part_record out;
    GMimeContentType* type = g_mime_object_get_content_type(object);
    if (type != nullptr) {
      char* mime_type = g_mime_content_type_get_mime_type(type);
      if (mime_type != nullptr) {
        out.content_type = ascii_lower(mime_type);
        g_free(mime_type);
      }
    }
    if (out.content_type.empty()) out.content_type = "text/plain";
    const char* filename = g_mime_part_get_filename(part);
    if (filename != nullptr) out.filename = filename;
    GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
    const bool attachment =
        disposition != nullptr && g_mime_content_disposition_is_attachment(disposition);
    if (!is_attachment_like(out.content_type, filename != nullptr, attachment)) return;
    out.depth = depth;
    hash_content(part, out);
    info_.attachments.push_back(std::move(out));
  }

  // Decodes through a GMime filter stream and feeds the hash chunk by chunk.
  void hash_content(GMimePart* part, part_record& out) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    GMimeStream* source = content != nullptr ? g_mime_data_wrapper_get_stream(content) : nullptr;
    if (source == nullptr) {
      out.sha256 = to_hex(hasher_.finish());
      return;
    }
    g_mime_stream_reset(source);
    gobject_ref<GMimeStream> filtered(g_mime_stream_filter_new(source));
    const GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
    if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
        encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
      gobject_ref<GMimeFilter> decoder(g_mime_filter_basic_new(encoding, FALSE));
      g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), decoder.get());
    }
    for (;;) {
      const ssize_t got = g_mime_stream_read(filtered.get(), chunk_.data(), chunk_.size());
      if (got > 0) {
        hasher_.update(chunk_.data(), static_cast<std::size_t>(got));
        out.size += static_cast<std::uint64_t>(got);
        continue;
      }
      // 0 without end-of-stream would loop forever on a misbehaving stream; stop instead.
      break;
    }
    out.sha256 = to_hex(hasher_.finish());
  }

  const scan_limits& limits_;
  message_info& info_;
  sha256 hasher_;
  std::array<char, decode_chunk> chunk_{};
};

}  // namespace

std::string_view to_string(skip_reason reason) {
  switch (reason) {
    case skip_reason::none:
      return "none";
    case skip_reason::message_too_large:
      return "message too large";
    case skip_reason::header_too_large:
      return "header too large";
    case skip_reason::too_deep:
      return "MIME nesting too deep";
    case skip_reason::too_many_parts:
      return "too many MIME parts";
    case skip_reason::unparsable:
      return "not parsable as a message";
    case skip_reason::time_budget:
      return "time budget of the file exhausted";
  }
  return "unknown";
}

bool is_attachment_like(std::string_view content_type, bool has_filename,
                        bool disposition_attachment) {
  if (has_filename || disposition_attachment) return true;
  return content_type.substr(0, 5) != "text/";
}

message_info scan_message(std::string_view message, const scan_limits& limits) {
  message_info info;
  if (message.size() > limits.max_message_bytes) {
    info.skipped = skip_reason::message_too_large;
    return info;
  }
  if (header_block_size(message) > limits.max_header_bytes) {
    info.skipped = skip_reason::header_too_large;
    return info;
  }
  if (container_mentions(message) > limits.max_mime_parts) {
    info.skipped = skip_reason::too_many_parts;
    return info;
  }
  ensure_gmime();
  gobject_ref<GMimeStream> stream(
      g_mime_stream_mem_new_with_buffer(message.data(), message.size()));
  gobject_ref<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  gobject_ref<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
  if (parsed.get() == nullptr) {
    info.skipped = skip_reason::unparsable;
    return info;
  }
  if (const char* id = g_mime_message_get_message_id(parsed.get()); id != nullptr) {
    info.message_id = id;
  }
  info.date_header = to_time_point(g_mime_message_get_date(parsed.get()));
  info.received_at = received_time(GMIME_OBJECT(parsed.get()));
  walker walk(limits, info);
  if (!walk.walk(g_mime_message_get_mime_part(parsed.get()), 0)) info.attachments.clear();
  return info;
}

}  // namespace rcptguard::scanner

// The cluster store's connection (see redis_client.hpp).
#include "cluster/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <utility>

namespace rcptguard::cluster {

namespace {

// Replies read per pipelined chunk: bounds what hiredis buffers for one round.
constexpr std::size_t chunk = 512;

constexpr std::uint32_t minute_ttl_seconds = 15 * 60;
constexpr std::uint32_t hour_ttl_seconds = 25 * 3600;
constexpr std::uint32_t epoch_ttl_seconds = 75 * 60;

// ARGV: prefix, own field prefix, recipient, minute. Returns 10 minute counts and 24 hour
// counts of the other nodes (oldest first), then distinct senders in 10 minutes and in the
// hour (six 10-minute epochs), and distinct clients in 10 minutes.
constexpr const char* read_script = R"lua(
local p, me, r, minute = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function others(key)
  local t = redis.call('HGETALL', key)
  local sum = 0
  for i = 1, #t, 2 do
    if string.sub(t[i], 1, #me) ~= me then sum = sum + tonumber(t[i + 1]) end
  end
  return sum
end
local out = {}
for k = 9, 0, -1 do out[#out + 1] = others(p .. 'm:' .. (minute - k) .. ':' .. r) end
local hour = math.floor(minute / 60)
for k = 23, 0, -1 do out[#out + 1] = others(p .. 'h:' .. (hour - k) .. ':' .. r) end
local s, c, e = {}, {}, {}
for k = 9, 0, -1 do
  s[#s + 1] = p .. 's:' .. (minute - k) .. ':' .. r
  c[#c + 1] = p .. 'c:' .. (minute - k) .. ':' .. r
end
local epoch = math.floor(minute / 10)
for k = 5, 0, -1 do e[#e + 1] = p .. 'e:' .. (epoch - k) .. ':' .. r end
out[#out + 1] = redis.call('PFCOUNT', unpack(s))
out[#out + 1] = redis.call('PFCOUNT', unpack(e))
out[#out + 1] = redis.call('PFCOUNT', unpack(c))
return out
)lua";

// ARGV: prefix, cap, ttl, then (recipient, sender, minute) triples. Keeps the earliest first
// sighting of each pair; a recipient with `cap` senders takes no new one. Returns the pairs
// added and the pairs refused for the cap.
constexpr const char* share_script = R"lua(
local p, cap, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local added, refused = 0, 0
for i = 4, #ARGV, 3 do
  local k, sender, minute = p .. 'k:' .. ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local old = redis.call('HGET', k, sender)
  if not old then
    if redis.call('HLEN', k) < cap then
      redis.call('HSET', k, sender, minute)
      added = added + 1
    else
      refused = refused + 1
    end
  elseif tonumber(old) > minute then
    redis.call('HSET', k, sender, minute)
  end
  redis.call('EXPIRE', k, ttl)
end
return {added, refused}
)lua";

// Pairs sent in one call of the share script.
constexpr std::size_t pairs_per_call = 64;

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::string key_of(const std::string& prefix, char kind, std::uint32_t bucket,
                   const std::string& recipient) {
  std::string k = prefix;
  k += kind;
  k += ':';
  k += std::to_string(bucket);
  k += ':';
  k += recipient;
  return k;
}

std::uint32_t as_count(const redisReply* r) {
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) return 0;
  return static_cast<std::uint32_t>(std::min<long long>(r->integer, 0xffffffffLL));
}

}  // namespace

void redis_client::reply_deleter::operator()(void* reply) const {
  freeReplyObject(reply);
}

redis_client::redis_client(redis_options options) : options_(std::move(options)) {}

redis_client::~redis_client() {
  disconnect();
}

std::string redis_client::describe() const {
  if (!options_.unix_path.empty()) return "unix:" + options_.unix_path;
  const bool v6 = options_.host.find(':') != std::string::npos;
  return (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(options_.port);
}

void redis_client::disconnect() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  appended_ = 0;
}

void redis_client::fail(const std::string& what) {
  std::string text = what;
  if (context_ != nullptr && context_->err != 0) {
    text += ": ";
    text += static_cast<const char*>(context_->errstr);
  }
  disconnect();
  throw redis_error(text);
}

void redis_client::connect() {
  disconnect();
  const timeval tv = to_timeval(options_.timeout);
  context_ = options_.unix_path.empty()
                 ? redisConnectWithTimeout(options_.host.c_str(), options_.port, tv)
                 : redisConnectUnixWithTimeout(options_.unix_path.c_str(), tv);
  if (context_ == nullptr) throw redis_error("connect to " + describe() + ": out of memory");
  if (context_->err != 0) fail("connect to " + describe());
  if (redisSetTimeout(context_, tv) != REDIS_OK) fail("set time-out");
  if (options_.unix_path.empty()) static_cast<void>(redisEnableKeepAlive(context_));
  if (!options_.password.empty()) {
    if (options_.user.empty()) {
      command({"AUTH", options_.password});
    } else {
      command({"AUTH", options_.user, options_.password});
    }
  }
  load_scripts();
}

void redis_client::load_scripts() {
  const auto load = [&](const char* script) {
    const reply_ptr r = command({"SCRIPT", "LOAD", script});
    const auto* reply = static_cast<const redisReply*>(r.get());
    if (reply->type != REDIS_REPLY_STRING) fail("SCRIPT LOAD: unexpected reply");
    return std::string(reply->str, reply->len);
  };
  read_sha_ = load(read_script);
  share_sha_ = load(share_script);
}

void redis_client::append(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), args.data(),
                             lengths.data()) != REDIS_OK) {
    fail("send " + argv.front());
  }
  ++appended_;
}

redis_client::reply_ptr redis_client::read_reply() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail("reply");
  --appended_;
  return reply_ptr(raw);
}

redis_client::reply_ptr redis_client::command(const std::vector<std::string>& argv) {
  if (context_ == nullptr) throw redis_error("not connected");
  append(argv);
  reply_ptr r = read_reply();
  const auto* reply = static_cast<const redisReply*>(r.get());
  if (reply->type == REDIS_REPLY_ERROR) {
    fail(argv.front() + ": " + std::string(reply->str, reply->len));
  }
  return r;
}

void redis_client::pipeline(const std::vector<std::vector<std::string>>& commands,
                            const std::function<void(std::size_t, const redisReply&)>& take) {
  if (context_ == nullptr) throw redis_error("not connected");
  bool reloaded = false;
  for (std::size_t first = 0; first < commands.size();) {
    const std::size_t last = std::min(commands.size(), first + chunk);
    for (std::size_t k = first; k < last; ++k) append(commands[k]);
    // Every reply of the chunk is read before any is taken: a chunk sent again after NOSCRIPT
    // is then taken once.
    std::vector<reply_ptr> replies;
    replies.reserve(last - first);
    bool no_script = false;
    for (std::size_t k = first; k < last; ++k) {
      replies.push_back(read_reply());
      const auto* reply = static_cast<const redisReply*>(replies.back().get());
      if (reply->type != REDIS_REPLY_ERROR) continue;
      const std::string_view error(reply->str, reply->len);
      // Redis restarted (or SCRIPT FLUSH): its script cache is empty. Load the scripts again
      // and send the chunk again, once.
      if (error.starts_with("NOSCRIPT")) {
        no_script = true;
      } else {
        // The rest of the chunk's replies are left unread: fail() disconnects.
        fail(commands[k].front() + ": " + std::string(error));
      }
    }
    if (no_script) {
      if (reloaded) fail("EVALSHA: NOSCRIPT after SCRIPT LOAD");
      reloaded = true;
      load_scripts();
      continue;
    }
    for (std::size_t k = first; k < last; ++k) {
      take(k, *static_cast<const redisReply*>(replies[k - first].get()));
    }
    first = last;
  }
}

void redis_client::publish(const publish_batch& batch, std::string_view field) {
  if (context_ == nullptr) throw redis_error("not connected");
  const std::string& p = options_.key_prefix;
  std::vector<std::vector<std::string>> commands;
  const auto counts = [&](const std::vector<count_row>& rows, char kind, std::uint32_t ttl) {
    for (const count_row& r : rows) {
      std::string k = key_of(p, kind, r.bucket, r.recipient);
      commands.push_back({"HSET", k, std::string{field}, std::to_string(r.count)});
      commands.push_back({"EXPIRE", std::move(k), std::to_string(ttl)});
    }
  };
  const auto sketches = [&](const std::vector<sketch_row>& rows, char kind, std::uint32_t ttl) {
    for (const sketch_row& r : rows) {
      std::string k = key_of(p, kind, r.bucket, r.recipient);
      std::vector<std::string> add{"PFADD", k};
      add.insert(add.end(), r.items.begin(), r.items.end());
      commands.push_back(std::move(add));
      commands.push_back({"EXPIRE", std::move(k), std::to_string(ttl)});
    }
  };
  counts(batch.minutes, 'm', minute_ttl_seconds);
  counts(batch.hours, 'h', hour_ttl_seconds);
  sketches(batch.senders, 's', minute_ttl_seconds);
  sketches(batch.epoch_senders, 'e', epoch_ttl_seconds);
  sketches(batch.clients, 'c', minute_ttl_seconds);
  pipeline(commands, [](std::size_t, const redisReply&) {});
}

std::vector<decision::cluster_counts> redis_client::pull(const std::vector<std::string>& recipients,
                                                         std::string_view own_prefix,
                                                         std::uint32_t minute) {
  const std::string me{own_prefix};
  const std::string at = std::to_string(minute);
  std::vector<std::vector<std::string>> commands;
  commands.reserve(recipients.size());
  for (const std::string& r : recipients) {
    commands.push_back({"EVALSHA", read_sha_, "0", options_.key_prefix, me, r, at});
  }
  std::vector<decision::cluster_counts> out;
  out.reserve(recipients.size());
  pipeline(commands, [&](std::size_t k, const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 37) {
      fail("EVALSHA: unexpected reply");
    }
    decision::cluster_counts& c = out.emplace_back();
    c.recipient = recipients[k];
    c.minute = minute;
    for (std::size_t i = 0; i < 10; ++i) c.minutes[i] = as_count(reply.element[i]);
    for (std::size_t i = 0; i < 24; ++i) c.hours[i] = as_count(reply.element[10 + i]);
    c.senders_ten = as_count(reply.element[34]);
    c.senders_hour = as_count(reply.element[35]);
    c.clients_ten = as_count(reply.element[36]);
  });
  return out;
}

redis_client::share_result redis_client::share_correspondents(const std::vector<pair_row>& pairs,
                                                              std::size_t cap,
                                                              std::chrono::seconds ttl) {
  std::vector<std::vector<std::string>> commands;
  for (std::size_t first = 0; first < pairs.size(); first += pairs_per_call) {
    std::vector<std::string>& call = commands.emplace_back(
        std::vector<std::string>{"EVALSHA", share_sha_, "0", options_.key_prefix,
                                 std::to_string(cap), std::to_string(ttl.count())});
    const std::size_t last = std::min(pairs.size(), first + pairs_per_call);
    for (std::size_t k = first; k < last; ++k) {
      call.push_back(pairs[k].recipient);
      call.push_back(pairs[k].sender);
      call.push_back(std::to_string(pairs[k].minute));
    }
  }
  share_result result;
  pipeline(commands, [&](std::size_t, const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2) fail("EVALSHA: unexpected reply");
    result.added += as_count(reply.element[0]);
    result.refused_full += as_count(reply.element[1]);
  });
  return result;
}

std::vector<decision::known_senders> redis_client::read_correspondents(
    const std::vector<std::string>& recipients, std::size_t max_senders) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(recipients.size());
  for (const std::string& r : recipients)
    commands.push_back({"HGETALL", options_.key_prefix + "k:" + r});
  std::vector<decision::known_senders> out;
  out.reserve(recipients.size());
  pipeline(commands, [&](std::size_t k, const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements % 2 != 0) {
      fail("HGETALL: unexpected reply");
    }
    decision::known_senders& known = out.emplace_back();
    known.recipient = recipients[k];
    known.senders.reserve(std::min(reply.elements / 2, max_senders));
    for (std::size_t i = 0; i + 1 < reply.elements && known.senders.size() < max_senders; i += 2) {
      const redisReply* field = reply.element[i];
      const redisReply* value = reply.element[i + 1];
      if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) continue;
      std::uint32_t minute = 0;
      const std::string_view text(value->str, value->len);
      if (std::from_chars(text.data(), text.data() + text.size(), minute).ec != std::errc{})
        continue;
      known.senders.push_back({std::string(field->str, field->len), minute});
    }
  });
  return out;
}

void redis_client::publish_releases(const std::vector<release_note>& notes,
                                    std::chrono::seconds ttl) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(notes.size());
  for (const release_note& n : notes) {
    const nlohmann::json value{
        {"at", n.at}, {"node", n.node}, {"user", n.user}, {"reason", n.reason}};
    commands.push_back({"SET", options_.key_prefix + "o:" + n.recipient, value.dump(), "EX",
                        std::to_string(ttl.count())});
  }
  pipeline(commands, [](std::size_t, const redisReply&) {});
}

std::vector<std::optional<release_note>> redis_client::read_releases(
    const std::vector<std::string>& recipients) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(recipients.size());
  for (const std::string& r : recipients)
    commands.push_back({"GET", options_.key_prefix + "o:" + r});
  std::vector<std::optional<release_note>> out(recipients.size());
  pipeline(commands, [&](std::size_t k, const redisReply& reply) {
    if (reply.type != REDIS_REPLY_STRING) return;
    // Another program sharing the prefix could have written anything: what is not a note is
    // no release.
    const nlohmann::json value =
        nlohmann::json::parse(std::string_view(reply.str, reply.len), nullptr, false);
    if (!value.is_object() || !value.contains("at") || !value["at"].is_number_integer() ||
        !value.contains("node") || !value["node"].is_string()) {
      return;
    }
    const auto text = [&](const char* key, std::size_t max) {
      return value.contains(key) && value[key].is_string()
                 ? value[key].get<std::string>().substr(0, max)
                 : std::string{};
    };
    release_note n;
    n.recipient = recipients[k];
    n.at = value["at"].get<std::int64_t>();
    n.node = text("node", max_release_user);
    n.user = text("user", max_release_user);
    n.reason = text("reason", max_release_reason);
    out[k] = std::move(n);
  });
  return out;
}

std::vector<std::string> redis_client::claim_episodes(const std::vector<episode_claim>& claims,
                                                      const std::vector<std::string>& open,
                                                      std::chrono::seconds ttl) {
  const std::string seconds = std::to_string(ttl.count());
  const auto key = [&](const std::string& recipient) {
    return options_.key_prefix + "x:" + recipient;
  };
  std::vector<std::vector<std::string>> commands;
  commands.reserve(claims.size() * 2 + open.size());
  for (const episode_claim& c : claims) {
    commands.push_back({"SET", key(c.recipient), c.proposed, "NX", "EX", seconds});
    commands.push_back({"GET", key(c.recipient)});
  }
  for (const std::string& r : open) commands.push_back({"EXPIRE", key(r), seconds});
  std::vector<std::string> ids;
  ids.reserve(claims.size());
  pipeline(commands, [&](std::size_t k, const redisReply& reply) {
    if (k >= claims.size() * 2 || k % 2 == 0) return;
    // Expired between the two (30 minutes after the last close): ours then.
    ids.push_back(reply.type == REDIS_REPLY_STRING ? std::string(reply.str, reply.len)
                                                   : claims[k / 2].proposed);
  });
  return ids;
}

}  // namespace rcptguard::cluster

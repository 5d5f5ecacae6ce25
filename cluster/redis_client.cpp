// The cluster store's connection (see redis_client.hpp).
#include "cluster/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <iterator>
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
  load_script();
}

void redis_client::load_script() {
  const reply_ptr r = command({"SCRIPT", "LOAD", read_script});
  const auto* reply = static_cast<const redisReply*>(r.get());
  if (reply->type != REDIS_REPLY_STRING) fail("SCRIPT LOAD: unexpected reply");
  script_sha_.assign(reply->str, reply->len);
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
  for (std::size_t first = 0; first < commands.size(); first += chunk) {
    const std::size_t last = std::min(commands.size(), first + chunk);
    for (std::size_t k = first; k < last; ++k) append(commands[k]);
    for (std::size_t k = first; k < last; ++k) {
      const reply_ptr r = read_reply();
      const auto* reply = static_cast<const redisReply*>(r.get());
      if (reply->type == REDIS_REPLY_ERROR) {
        fail(commands[k].front() + ": " + std::string(reply->str, reply->len));
      }
    }
  }
}

std::vector<decision::cluster_counts> redis_client::pull(const std::vector<std::string>& recipients,
                                                         std::string_view own_prefix,
                                                         std::uint32_t minute) {
  if (context_ == nullptr) throw redis_error("not connected");
  std::vector<decision::cluster_counts> out;
  out.reserve(recipients.size());
  const std::string me{own_prefix};
  const std::string at = std::to_string(minute);
  bool reloaded = false;
  for (std::size_t first = 0; first < recipients.size();) {
    const std::size_t last = std::min(recipients.size(), first + chunk);
    for (std::size_t k = first; k < last; ++k) {
      append({"EVALSHA", script_sha_, "0", options_.key_prefix, me, recipients[k], at});
    }
    bool no_script = false;
    std::vector<decision::cluster_counts> read;
    for (std::size_t k = first; k < last; ++k) {
      const reply_ptr r = read_reply();
      const auto* reply = static_cast<const redisReply*>(r.get());
      if (reply->type == REDIS_REPLY_ERROR) {
        // Redis restarted (or SCRIPT FLUSH): its script cache is empty. Load it again and
        // send the chunk again, once.
        if (std::string_view(reply->str, reply->len).starts_with("NOSCRIPT")) {
          no_script = true;
          continue;
        }
        fail("EVALSHA: " + std::string(reply->str, reply->len));
      }
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 37) {
        fail("EVALSHA: unexpected reply");
      }
      decision::cluster_counts c;
      c.recipient = recipients[k];
      c.minute = minute;
      for (std::size_t i = 0; i < 10; ++i) c.minutes[i] = as_count(reply->element[i]);
      for (std::size_t i = 0; i < 24; ++i) c.hours[i] = as_count(reply->element[10 + i]);
      c.senders_ten = as_count(reply->element[34]);
      c.senders_hour = as_count(reply->element[35]);
      c.clients_ten = as_count(reply->element[36]);
      read.push_back(std::move(c));
    }
    if (no_script) {
      if (reloaded) fail("EVALSHA: NOSCRIPT after SCRIPT LOAD");
      reloaded = true;
      load_script();
      continue;  // the same chunk again
    }
    std::move(read.begin(), read.end(), std::back_inserter(out));
    first = last;
  }
  return out;
}

std::vector<std::string> redis_client::claim_episodes(const std::vector<episode_claim>& claims,
                                                      const std::vector<std::string>& open,
                                                      std::chrono::seconds ttl) {
  if (context_ == nullptr) throw redis_error("not connected");
  const std::string seconds = std::to_string(ttl.count());
  const auto key = [&](const std::string& recipient) {
    return options_.key_prefix + "x:" + recipient;
  };
  std::vector<std::string> ids;
  ids.reserve(claims.size());
  for (std::size_t first = 0; first < claims.size(); first += chunk / 2) {
    const std::size_t last = std::min(claims.size(), first + chunk / 2);
    for (std::size_t k = first; k < last; ++k) {
      append({"SET", key(claims[k].recipient), claims[k].proposed, "NX", "EX", seconds});
      append({"GET", key(claims[k].recipient)});
    }
    for (std::size_t k = first; k < last; ++k) {
      const reply_ptr set = read_reply();
      const reply_ptr get = read_reply();
      const auto* set_reply = static_cast<const redisReply*>(set.get());
      const auto* got = static_cast<const redisReply*>(get.get());
      if (set_reply->type == REDIS_REPLY_ERROR) {
        fail("SET: " + std::string(set_reply->str, set_reply->len));
      }
      // Expired between the two (30 minutes after the last close): ours then.
      ids.push_back(got->type == REDIS_REPLY_STRING ? std::string(got->str, got->len)
                                                    : claims[k].proposed);
    }
  }
  for (std::size_t first = 0; first < open.size(); first += chunk) {
    const std::size_t last = std::min(open.size(), first + chunk);
    for (std::size_t k = first; k < last; ++k) append({"EXPIRE", key(open[k]), seconds});
    for (std::size_t k = first; k < last; ++k) {
      const reply_ptr r = read_reply();
      const auto* reply = static_cast<const redisReply*>(r.get());
      if (reply->type == REDIS_REPLY_ERROR) {
        fail("EXPIRE: " + std::string(reply->str, reply->len));
      }
    }
  }
  return ids;
}

}  // namespace rcptguard::cluster

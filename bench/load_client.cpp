// Closed-loop load client for the Postfix policy protocol, shaped like Postfix itself: N
// connections, each with exactly one request outstanding (smtpd never pipelines). Each message
// is an RCPT request followed, optionally, by its END-OF-MESSAGE request with the same
// instance, with the full Postfix 3.7 attribute set. Reports throughput, latency percentiles
// and the actions returned. epoll directly, so the client costs as little CPU as possible.
//
// Workloads (recipients are user0..userN-1@example.test):
//   zipf     --zipf or --mix zipf: zipf(1.0) over --recipients; the head is a flood in progress
//   uniform  --uniform N or --mix uniform: uniform over N (or --recipients) recipients
//   prod     --mix prod: uniform background over --recipients (default 1,000,000) plus
//            --flood-share (default 0.005) of messages to --flood-targets (default 3) extra
//            recipients userN..userN+k-1: with the daemon's default thresholds the background
//            stays under every floor, so only the floods (under 1 % of requests) are flagged.
// --rcpt-only (or --no-eom) sends RCPT requests only. The first output line (target=...) is what
// bench/run.sh parses; a second line (workload=...) describes the workload and action shares.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct options {
  std::string target = "inet:127.0.0.1:10041";
  int connections = 64;
  double duration_s = 5.0;
  double warmup_s = 1.0;
  int recipients = 10000;       ///< distinct recipient addresses
  double hot_fraction = 0.0;    ///< share of messages to user0 (a flood in progress)
  bool zipf = false;            ///< recipients drawn from a zipf(1.0) distribution
  bool eom = true;              ///< follow each RCPT with its END-OF-MESSAGE
  int clients = 200;            ///< distinct client addresses
  std::string mix = "uniform";  ///< zipf | uniform | prod (what is printed on the workload line)
  double flood_share = 0.005;   ///< prod: share of messages to the flood targets
  int flood_targets = 3;        ///< prod: recipients userN..userN+k-1 under a flood
  bool recipients_given = false;
};

void usage() {
  std::fprintf(
      stderr,
      "usage: rcptguard-load [--target inet:HOST:PORT|unix:/path] [--connections N]\n"
      "         [--duration S] [--warmup S] [--recipients N] [--hot-fraction F]\n"
      "         [--zipf] [--no-eom] [--clients N]\n"
      "         [--uniform N] [--rcpt-only] [--mix zipf|uniform|prod]\n"
      "         [--flood-share F] [--flood-targets K]\n"
      "  --uniform N      N recipients drawn uniformly (the default distribution)\n"
      "  --rcpt-only      RCPT requests only, no END-OF-MESSAGE (same as --no-eom)\n"
      "  --mix prod       uniform background over --recipients (default 1000000) plus\n"
      "                   --flood-share (0.005) of messages to --flood-targets (3)\n"
      "                   further recipients: under 1 %% flagged with default thresholds\n");
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--target")
      o.target = next();
    else if (a == "--connections")
      o.connections = std::stoi(next());
    else if (a == "--duration")
      o.duration_s = std::stod(next());
    else if (a == "--warmup")
      o.warmup_s = std::stod(next());
    else if (a == "--recipients") {
      o.recipients = std::stoi(next());
      o.recipients_given = true;
    } else if (a == "--uniform") {
      o.recipients = std::stoi(next());
      o.recipients_given = true;
      o.zipf = false;
      o.mix = "uniform";
    } else if (a == "--mix") {
      o.mix = next();
      if (o.mix != "zipf" && o.mix != "uniform" && o.mix != "prod") usage();
    } else if (a == "--flood-share")
      o.flood_share = std::stod(next());
    else if (a == "--flood-targets")
      o.flood_targets = std::stoi(next());
    else if (a == "--hot-fraction")
      o.hot_fraction = std::stod(next());
    else if (a == "--zipf")
      o.zipf = true;
    else if (a == "--no-eom" || a == "--rcpt-only")
      o.eom = false;
    else if (a == "--clients")
      o.clients = std::stoi(next());
    else
      usage();
  }
  if (o.zipf && o.mix == "uniform") o.mix = "zipf";
  if (o.mix == "zipf") o.zipf = true;
  if (o.mix == "prod") {
    o.zipf = false;
    if (!o.recipients_given) o.recipients = 1'000'000;
  }
  if (o.connections < 1 || o.recipients < 1 || o.clients < 1 || o.duration_s <= 0 ||
      o.flood_share < 0 || o.flood_share > 1 || o.flood_targets < 1)
    usage();
  return o;
}

int connect_to(const std::string& target) {
  int fd = -1;
  if (target.rfind("unix:", 0) == 0) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", target.c_str() + 5);
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
  } else if (target.rfind("inet:", 0) == 0) {
    const std::string rest = target.substr(5);
    const auto colon = rest.rfind(':');
    std::string host = rest.substr(0, colon);
    const int port = std::stoi(rest.substr(colon + 1));
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (host.find(':') != std::string::npos) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr);
      len = sizeof *s6;
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, host.c_str(), &s4->sin_addr);
      len = sizeof *s4;
    }
    fd = ::socket(ss.ss_family, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return -1;
  }
  return fd;
}

struct connection {
  int fd = -1;
  std::string out;
  std::size_t sent = 0;
  std::string in;
  steady::time_point started;
  int message = 0;
  bool at_eom = false;  ///< the outstanding request is the END-OF-MESSAGE of `message`
  int recipient = 0;
  int client = 0;
};

void build_request(connection& c, int conn_index, bool eom) {
  char buf[1400];
  const int n = std::snprintf(
      buf, sizeof buf,
      "request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\n"
      "client_address=10.%d.%d.%d\nclient_name=mx%d.remote.example\nclient_port=%d\n"
      "reverse_client_name=mx%d.remote.example\nserver_address=127.0.0.1\nserver_port=25\n"
      "helo_name=mx%d.remote.example\nsender=sender%d@remote%d.example\n"
      "recipient=user%d@example.test\nrecipient_count=%d\nqueue_id=%s\n"
      "instance=%x.%x.0\nsize=%d\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\n"
      "sasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
      "ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
      "encryption_keysize=0\npolicy_context=\n\n",
      eom ? "END-OF-MESSAGE" : "RCPT", (c.client >> 16) & 255, (c.client >> 8) & 255,
      c.client & 255, c.client, 40000 + conn_index, c.client, c.client, c.message % 9973, c.client,
      c.recipient, eom ? 1 : 0, eom ? "4F2A1B3C9D" : "", conn_index, c.message, eom ? 2345 : 0);
  c.out.assign(buf, static_cast<std::size_t>(n));
  c.sent = 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> zipf_cdf;
  if (o.zipf) {
    double sum = 0;
    for (int i = 1; i <= o.recipients; ++i) sum += 1.0 / i;
    double acc = 0;
    for (int i = 1; i <= o.recipients; ++i) {
      acc += 1.0 / i / sum;
      zipf_cdf.push_back(acc);
    }
  }
  const bool prod = o.mix == "prod";
  auto pick_recipient = [&]() -> int {
    if (o.hot_fraction > 0 && unit(rng) < o.hot_fraction) return 0;
    if (prod && unit(rng) < o.flood_share)
      return o.recipients + static_cast<int>(rng() % static_cast<std::uint64_t>(o.flood_targets));
    if (o.zipf) {
      const double u = unit(rng);
      const auto at = std::lower_bound(zipf_cdf.begin(), zipf_cdf.end(), u) - zipf_cdf.begin();
      return static_cast<int>(std::min<std::ptrdiff_t>(at, o.recipients - 1));
    }
    return static_cast<int>(rng() % static_cast<std::uint64_t>(o.recipients));
  };

  const int ep = epoll_create1(0);
  std::vector<connection> conns(static_cast<std::size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) {
    auto& c = conns[static_cast<std::size_t>(i)];
    c.fd = connect_to(o.target);
    if (c.fd < 0) {
      std::fprintf(stderr, "rcptguard-load: cannot connect to %s: %s\n", o.target.c_str(),
                   std::strerror(errno));
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }

  std::vector<std::uint32_t> latencies_us;
  latencies_us.reserve(8'000'000);
  std::map<std::string, std::uint64_t> actions;
  std::uint64_t errors = 0;
  std::uint64_t completed = 0;
  const auto start = steady::now();
  const auto measure_from = start + std::chrono::duration<double>(o.warmup_s);
  const auto stop_at = measure_from + std::chrono::duration<double>(o.duration_s);

  auto send_next = [&](int index) {
    auto& c = conns[static_cast<std::size_t>(index)];
    if (o.eom && !c.at_eom) {
      c.at_eom = true;
    } else {
      c.at_eom = false;
      ++c.message;
      c.recipient = pick_recipient();
      c.client = static_cast<int>(rng() % static_cast<std::uint64_t>(o.clients));
    }
    build_request(c, index, c.at_eom);
    c.started = steady::now();
    const ssize_t w = ::write(c.fd, c.out.data(), c.out.size());
    if (w != static_cast<ssize_t>(c.out.size()))
      ++errors;  // requests are far below a socket buffer
  };

  for (int i = 0; i < o.connections; ++i) {
    conns[static_cast<std::size_t>(i)].at_eom = true;  // so the first send starts a message
    send_next(i);
  }

  std::vector<epoll_event> events(static_cast<std::size_t>(o.connections));
  char buf[4096];
  bool running = true;
  while (running) {
    const int n = epoll_wait(ep, events.data(), o.connections, 1000);
    const auto now = steady::now();
    if (now >= stop_at) running = false;
    for (int k = 0; k < n; ++k) {
      const int index = static_cast<int>(events[static_cast<std::size_t>(k)].data.u32);
      auto& c = conns[static_cast<std::size_t>(index)];
      const ssize_t r = ::read(c.fd, buf, sizeof buf);
      if (r <= 0) {
        ++errors;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(r));
      const auto end = c.in.find("\n\n");
      if (end == std::string::npos) continue;
      if (now >= measure_from && now < stop_at) {
        ++completed;
        latencies_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - c.started).count()));
        std::string action = c.in.substr(0, end);
        if (action.rfind("action=", 0) == 0) action = action.substr(7);
        action = action.substr(0, action.find(' '));
        ++actions[action];
      }
      c.in.erase(0, end + 2);
      if (running) send_next(index);
    }
  }
  const double seconds = o.duration_s;
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) -> double {
    if (latencies_us.empty()) return 0;
    const auto i =
        static_cast<std::size_t>(std::min<double>(static_cast<double>(latencies_us.size()) - 1,
                                                  p * static_cast<double>(latencies_us.size())));
    return latencies_us[i] / 1000.0;
  };
  std::printf(
      "target=%s connections=%d duration=%.1fs requests=%llu rps=%.0f "
      "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%llu actions=",
      o.target.c_str(), o.connections, seconds, static_cast<unsigned long long>(completed),
      static_cast<double>(completed) / seconds, pct(0.50), pct(0.99), pct(0.999),
      latencies_us.empty() ? 0.0 : latencies_us.back() / 1000.0,
      static_cast<unsigned long long>(errors));
  bool first = true;
  for (const auto& [name, count] : actions) {
    std::printf("%s%s:%llu", first ? "" : ",", name.c_str(),
                static_cast<unsigned long long>(count));
    first = false;
  }
  std::printf("\n");
  // The workload and each action's share of the answers (flagged = anything but DUNNO/OK).
  std::uint64_t flagged = 0;
  for (const auto& [name, count] : actions) {
    if (name != "DUNNO" && name != "dunno" && name != "OK" && name != "ok") flagged += count;
  }
  std::printf("workload=%s recipients=%d distribution=%s requests_per_message=%d", o.mix.c_str(),
              o.recipients, o.zipf ? "zipf" : "uniform", o.eom ? 2 : 1);
  if (prod) std::printf(" flood_share=%g flood_targets=%d", o.flood_share, o.flood_targets);
  if (o.hot_fraction > 0) std::printf(" hot_fraction=%g", o.hot_fraction);
  std::printf(" clients=%d shares=", o.clients);
  first = true;
  for (const auto& [name, count] : actions) {
    std::printf(
        "%s%s:%.3f%%", first ? "" : ",", name.c_str(),
        completed > 0 ? 100.0 * static_cast<double>(count) / static_cast<double>(completed) : 0.0);
    first = false;
  }
  std::printf(
      " flagged_pct=%.3f\n",
      completed > 0 ? 100.0 * static_cast<double>(flagged) / static_cast<double>(completed) : 0.0);
  for (auto& c : conns) ::close(c.fd);
  return errors == 0 ? 0 : 1;
}

// The bounded POSIX policy client and the small utilities of test_support.hpp.
#include "tests/server/test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

namespace rcptguard::server_test {

namespace {

int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, steady::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// A non-blocking connect finished with poll, so a full backlog or a black hole cannot hang the
// test. Returns the fd, or -1 with errno set.
int connect_bounded(int domain, const sockaddr* address, socklen_t length, int receive_buffer = 0,
                    const sockaddr_in* source = nullptr) {
  const auto deadline = steady::now() + io_timeout;
  for (;;) {
    const int fd = ::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (receive_buffer > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (source != nullptr &&
        ::bind(fd, reinterpret_cast<const sockaddr*>(source), sizeof *source) != 0) {
      const int error = errno;
      ::close(fd);
      errno = error;
      return -1;
    }
    if (::connect(fd, address, length) == 0) return fd;
    const int error = errno;
    if (error == EINPROGRESS) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        ::close(fd);
        errno = ETIMEDOUT;
        return -1;
      }
      int so_error = 0;
      socklen_t so_length = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_length);
      if (so_error == 0) return fd;
      ::close(fd);
      errno = so_error;
      return -1;
    }
    ::close(fd);
    // A unix socket with a full backlog says EAGAIN instead of waiting; try again shortly.
    if (error == EAGAIN && steady::now() < deadline) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    errno = error;
    return -1;
  }
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes.substr(0, 200)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += '?';
    }
  }
  if (bytes.size() > 200) out += "...";
  return out;
}

}  // namespace

std::string rcpt_request(std::string_view recipient) {
  std::string r =
      "request=smtpd_access_policy\n"
      "protocol_state=RCPT\n"
      "protocol_name=ESMTP\n"
      "client_address=192.0.2.10\n"
      "client_name=mail.example.net\n"
      "client_port=58280\n"
      "reverse_client_name=mail.example.net\n"
      "server_address=192.0.2.1\n"
      "server_port=25\n"
      "helo_name=mail.example.net\n"
      "sender=sender@remote.example\n"
      "recipient=";
  r.append(recipient);
  r.append(
      "\n"
      "recipient_count=0\n"
      "queue_id=\n"
      "instance=2f5f.6b08d7af.aa4ee.0\n"
      "size=0\n"
      "etrn_domain=\n"
      "stress=\n"
      "sasl_method=\n"
      "sasl_username=\n"
      "sasl_sender=\n"
      "ccert_subject=\n"
      "ccert_issuer=\n"
      "ccert_fingerprint=\n"
      "ccert_pubkey_fingerprint=\n"
      "encryption_protocol=\n"
      "encryption_cipher=\n"
      "encryption_keysize=0\n"
      "policy_context=\n"
      "\n");
  return r;
}

std::string minimal_request(std::string_view extra_lines) {
  std::string r = "request=smtpd_access_policy\n";
  r.append(extra_lines);
  r.append("\n");
  return r;
}

test_client::test_client(test_client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      connect_error_(other.connect_error_),
      buffered_(std::move(other.buffered_)) {}

test_client& test_client::operator=(test_client&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    connect_error_ = other.connect_error_;
    buffered_ = std::move(other.buffered_);
  }
  return *this;
}

test_client::~test_client() {
  close();
}

namespace {

sockaddr_in ipv4(const char* address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
    throw std::invalid_argument(std::string("not an IPv4 address: ") + address);
  }
  return sa;
}

}  // namespace

test_client test_client::tcp(std::uint16_t port, const char* address, int receive_buffer) {
  return tcp_from(nullptr, port, address, receive_buffer);
}

test_client test_client::tcp_from(const char* source, std::uint16_t port, const char* address,
                                  int receive_buffer) {
  const sockaddr_in sa = ipv4(address, port);
  const std::optional<sockaddr_in> from =
      source != nullptr ? std::optional(ipv4(source, 0)) : std::nullopt;
  const int fd = connect_bounded(AF_INET, reinterpret_cast<const sockaddr*>(&sa), sizeof sa,
                                 receive_buffer, from ? &*from : nullptr);
  if (fd < 0) return test_client(-1, errno);
  // Small writes must leave as written: the split-request tests depend on it.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return test_client(fd, 0);
}

test_client test_client::unix_socket(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw std::invalid_argument("unix path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  const int fd = connect_bounded(AF_UNIX, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  if (fd < 0) return test_client(-1, errno);
  return test_client(fd, 0);
}

bool test_client::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return false;
  const auto deadline = steady::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd_, POLLOUT, deadline)) return false;
      continue;
    }
    return false;  // EPIPE, ECONNRESET: the server closed
  }
  return true;
}

read_result test_client::read_reply(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  std::array<char, 4096> chunk{};
  for (;;) {
    if (const auto end = buffered_.find("\n\n"); end != std::string::npos) {
      read_result result{read_status::reply, buffered_.substr(0, end + 2)};
      buffered_.erase(0, end + 2);
      return result;
    }
    if (fd_ < 0) return {read_status::error, std::exchange(buffered_, {})};
    const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
    if (n > 0) {
      buffered_.append(chunk.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || errno == ECONNRESET) return {read_status::closed, std::exchange(buffered_, {})};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return {read_status::error, std::exchange(buffered_, {})};
    }
    if (!wait_for(fd_, POLLIN, deadline))
      return {read_status::timeout, std::exchange(buffered_, {})};
  }
}

read_result test_client::read_until_closed(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  std::string received = std::exchange(buffered_, {});
  std::array<char, 4096> chunk{};
  if (fd_ < 0) return {read_status::error, received};
  for (;;) {
    const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
    if (n > 0) {
      received.append(chunk.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || errno == ECONNRESET) return {read_status::closed, received};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return {read_status::error, received};
    if (!wait_for(fd_, POLLIN, deadline)) return {read_status::timeout, received};
  }
}

std::string test_client::ask(std::string_view request) {
  if (fd_ < 0) return "<not connected: " + std::string(std::strerror(connect_error_)) + ">";
  if (!send(request)) return "<send failed: " + std::string(std::strerror(errno)) + ">";
  const read_result result = read_reply();
  if (result.status == read_status::reply) return result.bytes;
  return describe(result);
}

bool test_client::readable_within(std::chrono::milliseconds wait) {
  if (!buffered_.empty()) return true;
  if (fd_ < 0) return false;
  return wait_for(fd_, POLLIN, steady::now() + wait);
}

void test_client::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void test_client::close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void test_client::abort() {
  if (fd_ < 0) return;
  const linger hard{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close();
}

std::string describe(const read_result& result) {
  const char* what = "error";
  switch (result.status) {
    case read_status::reply:
      return result.bytes;
    case read_status::closed:
      what = "closed";
      break;
    case read_status::timeout:
      what = "timeout";
      break;
    case read_status::error:
      what = "error";
      break;
  }
  return "<" + std::string(what) + " after " + std::to_string(result.bytes.size()) + " byte(s): '" +
         printable(result.bytes) + "'>";
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
}

watchdog::watchdog(std::chrono::milliseconds timeout, std::function<void()> on_expiry)
    : thread_([this, timeout, on_expiry = std::move(on_expiry)] {
        std::unique_lock lock(mutex_);
        if (!cancelled_.wait_for(lock, timeout, [this] { return done_; })) on_expiry();
      }) {}

watchdog::~watchdog() {
  {
    const std::lock_guard lock(mutex_);
    done_ = true;
  }
  cancelled_.notify_all();
  thread_.join();
}

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &length) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error("free_tcp_port: " + std::string(std::strerror(error)));
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

}  // namespace rcptguard::server_test

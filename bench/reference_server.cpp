// The physical-limit reference: a server that answers "action=DUNNO\n\n" to every request with
// no parsing beyond finding the empty line that ends it. One thread, epoll, as a tuned C server
// would be; whatever rcptguard costs on top of this is the cost of its parsing and detection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 10049;
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 1024) != 0) {
    std::perror("reference_server: bind/listen");
    return 1;
  }
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  // Per connection: did the last chunk end in '\n' (an empty line may span two reads)?
  std::unordered_map<int, bool> ended_with_lf;
  static const char reply[] = "action=DUNNO\n\n";
  epoll_event events[256];
  char buf[16384];
  for (;;) {
    const int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (cfd < 0) continue;
        ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event cev{};
        cev.events = EPOLLIN;
        cev.data.fd = cfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        ended_with_lf[cfd] = false;
        continue;
      }
      const ssize_t r = ::read(fd, buf, sizeof buf);
      if (r <= 0) {
        ::close(fd);
        ended_with_lf.erase(fd);
        continue;
      }
      bool prev_lf = ended_with_lf[fd];
      for (ssize_t k = 0; k < r; ++k) {
        const bool lf = buf[k] == '\n';
        if (lf && prev_lf) {
          if (::write(fd, reply, sizeof reply - 1) < 0) break;
          prev_lf = false;
          continue;
        }
        prev_lf = lf;
      }
      ended_with_lf[fd] = prev_lf;
    }
  }
}

// SIGPIPE on the daemon's own threads that write to pipes and sockets with write(2) (the alert
// command's children, hiredis): blocked there, a peer that went away turns the write into EPIPE
// instead of killing the process. Asio's sockets need none of this (MSG_NOSIGNAL).
#pragma once

#include <pthread.h>

#include <csignal>
#include <ctime>

namespace rcptguard::daemon {

/// Blocks SIGPIPE for the calling thread only.
inline void block_sigpipe_on_this_thread() {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
}

/// Takes a SIGPIPE the thread's failed write left pending, so it does not linger.
inline void discard_pending_sigpipe() {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  const timespec no_wait{};
  static_cast<void>(::sigtimedwait(&pipe_signal, nullptr, &no_wait));
}

}  // namespace rcptguard::daemon

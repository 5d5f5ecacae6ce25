#!/usr/bin/env python3
"""How old the other nodes' counts are when a verdict uses them (issue 14), measured end to end
on two running rcptguard nodes that share a Redis (bench/cluster.sh starts them):

    bench/cluster_staleness.py --a PORT --b PORT [--rounds N] [--burst K]

Per round, a fresh recipient R: one message to R on node B (so R is active on B and B reads its
other nodes' counts), then K messages to R on node A as fast as A answers (the burst ends at
t0), then probes on B every 5 ms until B's reply names a 10-minute volume that includes all K of
A's: the staleness is that moment minus t0. The nodes must run with thresholds that make every
reply name the 10-minute volume (bench/cluster.sh sets them). Prints one line per round and the
median, 90th percentile and maximum. Python 3 standard library only.
"""

import argparse
import re
import socket
import statistics
import sys
import time

VOLUME = re.compile(rb" ([0-9]+) msgs/10m")


class Policy:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def ask(self, attrs):
        self.sock.sendall(("".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n").encode())
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("cluster_staleness: a node closed the connection")
            self.buf += chunk
        reply, self.buf = self.buf.split(b"\n\n", 1)
        return reply


def message(node, recipient, n):
    base = {"request": "smtpd_access_policy", "protocol_name": "ESMTP", "recipient": recipient,
            "sender": f"s{n}@bulk{n}.example", "client_address": f"198.51.100.{n % 250}",
            "instance": f"st.{recipient}.{n}"}
    reply = node.ask(dict(base, protocol_state="RCPT"))
    node.ask(dict(base, protocol_state="END-OF-MESSAGE", recipient_count="1", size="900"))
    return reply


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=int, required=True)
    ap.add_argument("--b", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--burst", type=int, default=20)
    a_args = ap.parse_args()
    a, b = Policy(a_args.a), Policy(a_args.b)
    seen = []
    n = 0
    for r in range(a_args.rounds):
        recipient = f"stale{r}.{int(time.time())}@example.test"
        message(b, recipient, n)
        n += 1
        for _ in range(a_args.burst):
            message(a, recipient, n)
            n += 1
        t0 = time.monotonic()
        probes = 0
        while True:
            reply = message(b, recipient, n)
            n += 1
            probes += 1
            m = VOLUME.search(reply)
            # B's own: the first message and the probes so far; A's: the burst.
            if m and int(m.group(1)) >= 1 + probes + a_args.burst:
                break
            if time.monotonic() - t0 > 10:
                raise SystemExit(f"cluster_staleness: round {r}: B never saw A's burst: {reply!r}")
            time.sleep(0.005)
        ms = (time.monotonic() - t0) * 1000
        seen.append(ms)
        print(f"round {r}: {ms:.0f} ms ({probes} probes)")
    seen.sort()
    p90 = seen[min(len(seen) - 1, int(0.9 * len(seen)))]
    print(f"staleness_ms median={statistics.median(seen):.0f} p90={p90:.0f} max={seen[-1]:.0f} "
          f"rounds={len(seen)} burst={a_args.burst}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write a delivery-dense mail log (Postfix or Sendmail) for the replay benchmark and the history
pre-fill (bench/make_history.sh).

    bench/make_maillog.py OUT.log                          # ~1M Postfix lines, 300 mailboxes, 3 weeks to now
    bench/make_maillog.py OUT.log --format sendmail        # the same traffic as Sendmail logs it
    bench/make_maillog.py - --deliveries 10000000 --mailboxes 1000000 | rcptguard ingest -o store.path=DB -

Every message is logged with its full set of lines, RFC 3339 timestamps (UTC), in time order with
the lines of concurrent messages interleaved as a real log has them:

  Postfix   smtpd  QID: client=name[addr]
            cleanup QID: message-id=<...>
            qmgr   QID: from=<s>, size=N, nrcpt=N (queue active)
            local|virtual|lmtp QID: to=<r>, relay=..., delay=..., delays=..., dsn=2.0.0, status=sent (...)
                   (one line per recipient)
            qmgr   QID: removed
  Sendmail  sm-mta QID: from=<s>, size=N, class=0, nrcpts=N, msgid=<...>, proto=ESMTP, daemon=MTA, relay=name [addr]
            sm-mta QID: to=<r>, delay=..., xdelay=..., mailer=local, pri=N, dsn=2.0.0, stat=Sent
                   (one line per recipient)

Traffic: `--mailboxes` ordinary mailboxes user0..userN-1@DOMAIN (the names rcptguard-load uses),
each with its own volume (log-normal), following a daily rhythm (office hours busy, nights and
weekends quiet); external senders (heavy-tailed) and some internal mail; messages with one to a
few dozen recipients. Busy accounts: list@ (a mailing list's posts, many senders), tickets@ (a
ticket inbox, with a few monitoring storms of a few hundred messages in under an hour) and
archive@ (a copy of every message to a group of archived mailboxes). Floods: `--floods` times a
few hundred messages to one ordinary mailbox within minutes, from many senders, so alerts appear.

Sizing: `--lines N` (default 1,000,000: at least N lines) or `--deliveries N` (at least N
deliveries, i.e. policy requests' worth of history); the background volume is scaled to it and
the floods and storms come on top. Deterministic for a given seed and --end. A summary goes to
standard error.
"""

import argparse
import bisect
import calendar
import functools
import heapq
import itertools
import math
import random
import sys
import time

FIRST = ["anna", "ben", "carla", "dev", "eva", "finn", "gina", "hugo", "ines", "jan", "kim",
         "lena", "marc", "nora", "omar", "pia", "quinn", "rosa", "sven", "tara", "uwe", "vera",
         "will", "xena", "yusuf", "zoe"]
TLDS = ["example", "example.com", "example.net", "example.org"]


def parse_end(text):
    if text in ("now", ""):
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    t = text.rstrip("Z").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(t, fmt)))
        except ValueError:
            continue
    raise SystemExit(f"make_maillog: --end: not an epoch or UTC date/time: {text!r}")


# Messages per hour relative to a weekday's office hours (UTC hours; the site is taken to be on UTC).
HOUR_OF_DAY = [0.06, 0.04, 0.03, 0.03, 0.04, 0.08, 0.20, 0.45, 0.85, 1.00, 1.00, 0.95,
               0.80, 0.90, 1.00, 0.95, 0.85, 0.65, 0.40, 0.30, 0.25, 0.20, 0.14, 0.09]
WEEKEND = 0.22


def rhythm(t):
    tm = time.gmtime(t)
    w = HOUR_OF_DAY[tm.tm_hour]
    return w * (WEEKEND if tm.tm_wday >= 5 else 1.0)


B60 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"


class Writer:
    """Formats timestamps (cached per second) and writes lines in large chunks."""

    def __init__(self, out, host):
        self.out = out
        self.host = host
        self.buf = []
        self.lines = 0
        self.sec = -1
        self.prefix = ""

    def line(self, t, text):
        s = int(t)
        if s != self.sec:
            self.sec = s
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        self.buf.append(f"{self.prefix}.{int((t - s) * 1e6):06d}+00:00 {self.host} {text}\n")
        self.lines += 1
        if len(self.buf) >= 8192:
            self.out.write("".join(self.buf))
            self.buf.clear()

    def close(self):
        if self.buf:
            self.out.write("".join(self.buf))
            self.buf.clear()
        self.out.flush()


# Postfix's delivery agent per mailbox: most through LMTP (Dovecot), some local mbox, some virtual.
AGENTS = ("lmtp", "lmtp", "local", "virtual", "lmtp")


@functools.lru_cache(maxsize=2_000_000)
def agent_of(rcpt):
    """The delivery agent of a recipient: userN@ by N, any other LMTP."""
    if rcpt.startswith("user"):
        try:
            return AGENTS[int(rcpt[4:rcpt.index("@")]) % len(AGENTS)]
        except ValueError:
            pass
    return "lmtp"


class MailLog:
    """Renders messages as Postfix or Sendmail logs them (the lines in the module's docstring) and
    writes the lines in time order through a Writer: a message's later lines wait until the log
    reaches their time, so the lines of concurrent messages interleave. Queue ids and the daemons'
    process ids move on from message to message as a real server's do. Used by make_maillog.py and
    detection_scenario.py."""

    def __init__(self, writer, fmt, domain, rnd, qid_counter):
        self.w = writer
        self.postfix = fmt == "postfix"
        self.domain = domain
        self.rnd = rnd
        self.rand = rnd.random
        self.qid_counter = qid_counter
        self.pid_smtpd, self.pid_cleanup, self.pid_qmgr = 21000, 21400, 1187
        self.pid_local, self.pid_lmtp, self.pid_virtual = 22000, 22500, 23000
        self.pid_sm = 30000
        self.heap = []  # (time, seq, text) of lines not yet due
        self.seq = 0

    def lines(self):
        """Lines written so far and waiting to be written."""
        return self.w.lines + len(self.heap)

    def flush_until(self, t):
        while self.heap and self.heap[0][0] <= t:
            lt, _, text = heapq.heappop(self.heap)
            self.w.line(lt, text)

    def close(self):
        self.flush_until(float("inf"))
        self.w.close()

    def message(self, t, rcpts, sender, client, msgid):
        """Logs a message received at t from client (name[addr]) and delivered to every recipient;
        its size is drawn here."""
        self.flush_until(t)
        size = int(self.rnd.lognormvariate(9.6, 1.1)) + 600
        self.qid_counter += 1
        if self.qid_counter % 500 == 0:  # processes come and go
            self.pid_smtpd += 7
            self.pid_lmtp += 3
            self.pid_sm += 11
        render = self.postfix_lines if self.postfix else self.sendmail_lines
        for lt, text in render(t, rcpts, sender, client, size, msgid):
            self.seq += 1
            heapq.heappush(self.heap, (lt, self.seq, text))

    def postfix_lines(self, t, rcpts, sender, client, size, msgid):
        rand, c = self.rand, self.qid_counter
        # 10 hex digits, uppercase: Postfix's short queue id; unique while the message lives.
        qid = f"{(c * 2654435761) & 0xFFFFFFFFFF:010X}"
        lines = [
            (t, f"postfix/smtpd[{self.pid_smtpd + c % 5}]: {qid}: client={client}"),
            (t + 0.004 + 0.02 * rand(), f"postfix/cleanup[{self.pid_cleanup + c % 3}]: {qid}: message-id=<{msgid}>"),
        ]
        tq = t + 0.03 + 0.1 * rand()
        lines.append((tq, f"postfix/qmgr[{self.pid_qmgr}]: {qid}: from=<{sender}>, size={size}, "
                          f"nrcpt={len(rcpts)} (queue active)"))
        td = tq
        for r in rcpts:
            td += 0.005 + 0.05 * rand()
            delay = td - t
            d1 = delay * 0.6
            agent = agent_of(r)
            if agent == "lmtp":
                text = (f"postfix/lmtp[{self.pid_lmtp + c % 4}]: {qid}: to=<{r}>, "
                        f"relay=imap.{self.domain}[private/dovecot-lmtp], delay={delay:.2f}, "
                        f"delays={d1:.2f}/0.01/0.01/{delay - d1:.2f}, dsn=2.0.0, "
                        f"status=sent (250 2.0.0 <{r}> {c:x} Saved)")
            elif agent == "local":
                text = (f"postfix/local[{self.pid_local + c % 3}]: {qid}: to=<{r}>, relay=local, "
                        f"delay={delay:.2f}, delays={d1:.2f}/0.01/0/{delay - d1:.2f}, dsn=2.0.0, "
                        f"status=sent (delivered to mailbox)")
            else:
                text = (f"postfix/virtual[{self.pid_virtual + c % 3}]: {qid}: to=<{r}>, relay=virtual, "
                        f"delay={delay:.2f}, delays={d1:.2f}/0.01/0/{delay - d1:.2f}, dsn=2.0.0, "
                        f"status=sent (delivered to maildir)")
            lines.append((td, text))
        lines.append((td + 0.001 + 0.01 * rand(), f"postfix/qmgr[{self.pid_qmgr}]: {qid}: removed"))
        return lines

    def sendmail_lines(self, t, rcpts, sender, client, size, msgid):
        rand, c = self.rand, self.qid_counter
        # Sendmail's queue id: date and time in base 60, a sequence, the pid (14 characters).
        tm = time.gmtime(t)
        qid = (f"{B60[tm.tm_year % 60]}{B60[tm.tm_mon - 1]}{B60[tm.tm_mday]}{B60[tm.tm_hour]}"
               f"{B60[tm.tm_min]}{B60[tm.tm_sec]}{B60[c % 60]}{B60[(c // 60) % 60]}{(c // 3600) % 1000000:06d}")
        cname, _, caddr = client.partition("[")
        lines = [(t, f"sm-mta[{self.pid_sm}]: {qid}: from=<{sender}>, size={size}, class=0, nrcpts={len(rcpts)}, "
                     f"msgid=<{msgid}>, proto=ESMTP, daemon=MTA, relay={cname} [{caddr}")]
        td = t
        for r in rcpts:
            td += 0.01 + 0.08 * rand()
            d = int(td - t)
            lines.append((td, f"sm-mta[{self.pid_sm + 1}]: {qid}: to=<{r}>, delay=00:00:{d % 60:02d}, "
                              f"xdelay=00:00:{d % 60:02d}, mailer=local, pri={30000 + size}, "
                              f"dsn=2.0.0, stat=Sent"))
        return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", help="file to write, - for standard output")
    ap.add_argument("--format", choices=["postfix", "sendmail"], default="postfix")
    ap.add_argument("--lines", type=int, default=1_000_000,
                    help="write at least this many lines (default 1,000,000)")
    ap.add_argument("--deliveries", type=int, default=0,
                    help="instead of --lines: at least this many deliveries (recipients of messages)")
    ap.add_argument("--end", default="now",
                    help="time of the last line: epoch seconds or UTC 'YYYY-MM-DDTHH:MM:SS' (default now)")
    ap.add_argument("--days", type=float, default=21.0, help="days covered (default 21)")
    ap.add_argument("--mailboxes", type=int, default=300, help="ordinary mailboxes (default 300)")
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--host", default="mail", help="syslog host name")
    ap.add_argument("--senders", type=int, default=20000, help="distinct external senders")
    ap.add_argument("--floods", type=int, default=4,
                    help="floods of a few hundred messages to one mailbox (default 4)")
    ap.add_argument("--storms", type=int, default=3, help="ticket-inbox storms (default 3)")
    ap.add_argument("--no-busy", action="store_true", help="no list@, tickets@, archive@")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mailboxes < 1 or a.days <= 0 or a.lines < 0 or a.deliveries < 0:
        ap.error("--mailboxes, --days must be positive")

    started = time.time()
    rnd = random.Random(a.seed)
    rand = rnd.random
    end = parse_end(a.end)
    start = end - a.days * 86400
    dom = a.domain
    postfix = a.format == "postfix"

    # --- population -----------------------------------------------------------------------------
    n = a.mailboxes
    mbox_names = [f"user{i}@{dom}" for i in range(n)]
    mbox_cum = list(itertools.accumulate(rnd.lognormvariate(0.0, 1.0) for _ in range(n)))
    archived_group = set(range(0, n, max(1, n // 30))) if not a.no_busy else set()
    ext_senders = []
    ext_clients = []
    for i in range(a.senders):
        d = i % 997
        tld = TLDS[d % len(TLDS)]
        ext_senders.append(f"{FIRST[i % 26]}.{i}@remote{d}.{tld}")
        ext_clients.append(f"mx{d % 4}.remote{d}.{tld}[198.{18 + d // 250}.{d % 250}.{10 + i % 7}]")
    sender_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(a.senders)))
    list_members = [f"member{i}@lists.remote{i % 50}.example" for i in range(400)]

    # --- sizing ---------------------------------------------------------------------------------
    # Recipients per message: 1 (86 %), 2 (8 %), 3-5 (4.5 %), 6-30 (1.5 %); archive copies add
    # about len(archived_group)/n of a recipient.
    mean_rcpt = 0.86 + 0.08 * 2 + 0.045 * 4 + 0.015 * 18 + (len(archived_group) / n)
    lines_per_msg = (4 + mean_rcpt) if postfix else (1 + mean_rcpt)
    busy_list_per_hour = 0 if a.no_busy else 14.0
    busy_tickets_per_hour = 0 if a.no_busy else 5.0

    # Hourly weights over the period.
    first_hour = int(start // 3600)
    last_hour = int(end // 3600)
    hours = list(range(first_hour, last_hour + 1))
    weights = []
    for h in hours:
        lo = max(start, h * 3600.0)
        hi = min(end, h * 3600.0 + 3600)
        weights.append(rhythm(h * 3600 + 1800) * max(0.0, hi - lo) / 3600.0)
    wsum = sum(weights) or 1.0
    mean_rhythm = wsum / max(1e-9, (end - start) / 3600.0)

    # --- special events: floods and ticket storms -------------------------------------------------
    events = []  # (time, recipient list, sender, client)
    floods = []
    for k in range(a.floods):
        target = mbox_names[rnd.randrange(n)]
        t0 = start + (end - start) * (0.05 + 0.9 * rand())
        count = rnd.randint(250, 600)
        span = rnd.uniform(180, 900)
        one_source = k % 2 == 1  # alternately a subscription bomb (many senders) and one client
        floods.append((t0, target, count, span, "one client" if one_source else "many senders"))
        for j in range(count):
            if one_source:
                s, c = f"bulk{k}@flood{k}.example", f"bomber{k}.example[203.0.113.{10 + k}]"
            else:
                s = f"noreply{j}@list{rnd.randrange(100000)}.example"
                c = f"mta{j % 500}.sub{k}.example[192.0.2.{j % 250 + 1}]"
            events.append((t0 + span * rand(), [target], s, c))
    if not a.no_busy:
        for k in range(a.storms):
            t0 = start + (end - start) * (0.05 + 0.9 * rand())
            count = rnd.randint(100, 300)
            span = rnd.uniform(1200, 3600)
            floods.append((t0, f"tickets@{dom}", count, span, "ticket storm"))
            for j in range(count):
                events.append((t0 + span * rand(), [f"tickets@{dom}"], f"monitoring@ops{k}.example",
                               f"nagios{k}.ops.example[203.0.113.{100 + k}]"))
    events.sort(key=lambda e: e[0])

    # The background fills what the busy accounts, floods and storms leave of the budget.
    special_msgs = len(events) + (busy_list_per_hour + busy_tickets_per_hour) * (end - start) / 3600
    if a.deliveries:
        messages = max(0.0, a.deliveries - special_msgs) / mean_rcpt
    else:
        messages = max(0.0, a.lines - special_msgs * (5 if postfix else 2)) / lines_per_msg
    messages *= 1.002  # aim a hair above; the top-up at the end guarantees the minimum

    # --- writing ----------------------------------------------------------------------------------
    out = sys.stdout if a.output == "-" else open(a.output, "w", buffering=1 << 20)
    w = Writer(out, a.host)
    log = MailLog(w, a.format, dom, rnd, rnd.randrange(1 << 20))
    counters = {"messages": 0, "deliveries": 0}
    mid_counter = 0

    def emit(t, rcpts, sender, client):
        nonlocal mid_counter
        mid_counter += 1
        counters["messages"] += 1
        counters["deliveries"] += len(rcpts)
        log.message(t, rcpts, sender, client, f"{int(t):x}.{mid_counter:x}@{sender.partition('@')[2] or dom}")

    choices = rnd.choices
    randrange = rnd.randrange
    nsend = a.senders

    def background(t):
        """One ordinary message at t: recipients, sender, client."""
        u = rand()
        if u < 0.86:
            k = 1
        elif u < 0.94:
            k = 2
        elif u < 0.985:
            k = randrange(3, 6)
        else:
            k = randrange(6, 31)
        if k == 1:
            idx = [bisect.bisect(mbox_cum, rand() * mbox_cum[-1])]
        else:
            idx = choices(range(n), cum_weights=mbox_cum, k=k)
        idx = [min(i, n - 1) for i in idx]
        rcpts = []
        seen = set()
        for i in idx:
            if i not in seen:
                seen.add(i)
                rcpts.append(mbox_names[i])
        if archived_group and not seen.isdisjoint(archived_group):
            rcpts.append(f"archive@{dom}")
        if rand() < 0.15:  # internal mail, submitted by an authenticated user
            j = randrange(n)
            return rcpts, mbox_names[j], f"client{j % 254}.{dom}[10.1.{j % 250}.{j % 199 + 1}]"
        s = bisect.bisect(sender_cum, rand() * sender_cum[-1])
        s = min(s, nsend - 1)
        return rcpts, ext_senders[s], ext_clients[s]

    ev = 0
    carry = 0.0
    scale = messages / wsum
    for h, wt in zip(hours, weights):
        if wt <= 0:
            continue
        lo = max(start, h * 3600.0)
        hi = min(end, h * 3600.0 + 3600)
        expected = wt * scale + carry
        count = int(expected)
        carry = expected - count
        r_h = wt / max(1e-9, (hi - lo) / 3600.0) / mean_rhythm  # this hour's rhythm vs average
        items = []  # (time, recipients or None for an ordinary message, sender, client)
        if busy_list_per_hour:
            for _ in range(int(busy_list_per_hour * r_h + rand())):
                j = randrange(len(list_members))
                m = list_members[j]
                items.append((lo + (hi - lo) * rand(), [f"list@{dom}"], m,
                              f"mx.{m.partition('@')[2]}[198.51.100.{j % 250 + 1}]"))
            for _ in range(int(busy_tickets_per_hour * r_h + rand())):
                j = randrange(5000)
                items.append((lo + (hi - lo) * rand(), [f"tickets@{dom}"], ext_senders[j], ext_clients[j]))
        while ev < len(events) and events[ev][0] < hi:
            items.append(events[ev])
            ev += 1
        items.extend((lo + (hi - lo) * rand(), None, None, None) for _ in range(count))
        items.sort(key=lambda e: e[0])
        for t, rcpts, sender, client in items:
            if rcpts is None:
                emit(t, *background(t))
            else:
                emit(t, rcpts, sender, client)
    while ev < len(events):
        emit(*events[ev])
        ev += 1
    # Top up in the last minute if the random recipient counts left us short.
    def short():
        if a.deliveries:
            return counters["deliveries"] < a.deliveries
        return log.lines() < a.lines
    t = end - 60
    while short():
        t = min(end - 1, t + 0.01)
        emit(t, *background(t))
    log.close()
    if out is not sys.stdout:
        out.close()

    took = time.time() - started
    print(f"make_maillog: {w.lines} lines, {counters['messages']} messages, "
          f"{counters['deliveries']} deliveries ({a.format}), {n} mailboxes, "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))} .. "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(end))}, "
          f"{took:.1f} s ({w.lines / max(took, 1e-9):.0f} lines/s)", file=sys.stderr)
    for t0, target, count, span, kind in sorted(floods):
        print(f"make_maillog: flood {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t0))} "
              f"{target} {count} messages in {span / 60:.0f} min ({kind})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

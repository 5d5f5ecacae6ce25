#!/usr/bin/env python3
"""Write a three-week mail log of a small organisation with labelled floods, for measuring
detection precision (bench/detection_eval.py replays it and scores the episodes).

    bench/detection_scenario.py /tmp/detect/postfix.log --labels /tmp/detect/labels.json
    bench/detection_scenario.py /tmp/detect/sendmail.log --labels /tmp/detect/labels.json --format sendmail

The same seed gives the same traffic, the same floods and the same labels in both formats (only
the rendering differs). Python 3 standard library only.

The organisation, example.test, over 21 days starting on a Monday 00:00 UTC (--start):

  user0..user299    ordinary mailboxes. Each has a weekday volume drawn from a log-normal
                    (median ~10 a weekday, i.e. a few a day over the week; the busiest ~45), a
                    daily rhythm (office hours busy, nights quiet, weekends at a fifth), its own
                    external correspondents drawn from a heavy-tailed pool of senders (so the same
                    senders come back), and some internal mail from colleagues.
  list@             a mailing list: a post every few minutes during the day, every day, from ~40
                    member addresses relayed by 4 list servers.
  tickets@          a ticket inbox: 2-6 tickets an hour in office hours, a trickle outside them,
                    and once or twice a week a STORM of 60-90 tickets in under 30 minutes from many
                    customers, at any hour of any day.
  archive@          a journal: one copy of every message to the archived half of the mailboxes.
                    Every Monday about 09:00 a newsletter goes to all 300 mailboxes within a few
                    minutes (so archive@ gets ~150 copies at once).
  bounces@          a bounce box: null sender <>, a steady trickle and, about twice a week, a
                    burst of 10-20 when a campaign bounces.

Five labelled floods, all in week three, each to a different ordinary mailbox that is not
archived (so archive@ sees no echo of them): a subscription bomb (many senders and clients, 25
minutes), a one-client mail bomb (~400 in 10 minutes), a slow flood (~1 a minute for 6 hours),
a bomb during the night, and a bomb to the quietest mailbox. Days, hours, targets and sizes vary
with the seed.

The log is rendered like bench/make_maillog.py renders it: RFC 3339 timestamps in UTC, Postfix's
smtpd/cleanup/qmgr/delivery-agent lines or Sendmail's from=/to= pairs, lines of concurrent
messages interleaved. Every message is delivered (status=sent / stat=Sent).

The labels (--labels FILE, JSON): start and end of the scenario (unix seconds), the floods
(recipient, start = first message, end = last message, messages, kind), the busy accounts, the
ticket storms, the newsletters, the bounce bursts, the archived mailboxes and counts. A summary
goes to standard error.
"""

import argparse
import calendar
import itertools
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_maillog import MailLog, Writer  # noqa: E402  (the rendering, shared)

DAY = 86400
DAYS = 21
MAILBOXES = 300
DOMAIN = "example.test"

# Relative message rate by UTC hour on a weekday (the site is on UTC), as in make_maillog.py.
HOUR_OF_DAY = [0.06, 0.04, 0.03, 0.03, 0.04, 0.08, 0.20, 0.45, 0.85, 1.00, 1.00, 0.95,
               0.80, 0.90, 1.00, 0.95, 0.85, 0.65, 0.40, 0.30, 0.25, 0.20, 0.14, 0.09]
WEEKEND = 0.22
FIRST = ["anna", "ben", "carla", "dev", "eva", "finn", "gina", "hugo", "ines", "jan", "kim",
         "lena", "marc", "nora", "omar", "pia", "quinn", "rosa", "sven", "tara", "uwe", "vera",
         "will", "xena", "yusuf", "zoe"]
TLDS = ["example", "example.com", "example.net", "example.org"]


def parse_start(text):
    try:
        t = calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise SystemExit(f"detection_scenario: --start: not a date YYYY-MM-DD: {text!r}")
    if time.gmtime(t).tm_wday != 0:
        raise SystemExit(f"detection_scenario: --start {text} is not a Monday")
    return t


def poisson(rnd, lam):
    """A Poisson variate (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 60:
        return max(0, int(round(rnd.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, rnd.random()
    while p > limit:
        k += 1
        p *= rnd.random()
    return k


def ms(t):
    """A label time: unix seconds to the millisecond."""
    return round(t, 3)


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Scenario:
    """Builds the list of messages (time, recipients, sender, client) and the labels."""

    def __init__(self, seed, start, volume):
        self.rnd = random.Random(seed)
        self.start = start
        self.end = start + DAYS * DAY
        self.volume = volume
        self.msgs = []  # (t, [recipients], sender, client)
        self.labels = {"start": start, "end": self.end, "seed": seed, "domain": DOMAIN,
                       "floods": [], "storms": [], "newsletters": [], "bounce_bursts": [],
                       "busy_accounts": [f"{n}@{DOMAIN}" for n in ("list", "tickets", "archive", "bounces")]}
        rnd = self.rnd
        # Ordinary mailboxes: weekday volume, archived or not, correspondents, colleagues.
        self.users = [f"user{i}@{DOMAIN}" for i in range(MAILBOXES)]
        self.per_weekday = [min(45.0, max(0.3, rnd.lognormvariate(math.log(10.0), 0.8)))
                            for _ in range(MAILBOXES)]
        self.archived = set(rnd.sample(range(MAILBOXES), MAILBOXES // 2))
        # External senders: a heavy-tailed pool; each mailbox also has its own correspondents.
        n_ext = 12000
        self.ext = []
        for i in range(n_ext):
            d = i % 997
            tld = TLDS[d % len(TLDS)]
            self.ext.append((f"{FIRST[i % 26]}.{i}@remote{d}.{tld}",
                             f"mx{d % 4}.remote{d}.{tld}[198.{18 + d // 250}.{d % 250}.{10 + i % 7}]"))
        self.ext_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(n_ext)))
        self.corr = [[self.zipf_sender() for _ in range(rnd.randint(8, 40))] for _ in range(MAILBOXES)]
        self.colleagues = [rnd.sample(range(MAILBOXES), 10) for _ in range(MAILBOXES)]
        self.customers = [(f"customer{j}@client{j % 400}.example.com",
                           f"mail.client{j % 400}.example.com[192.0.{2 + j % 400 // 250}.{j % 250 + 1}]")
                          for j in range(4000)]

    # --- helpers ---------------------------------------------------------------------------------
    def zipf_sender(self):
        u = self.rnd.random() * self.ext_cum[-1]
        lo, hi = 0, len(self.ext_cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ext_cum[mid] < u:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def hour_weight(self, t, weekend=WEEKEND):
        tm = time.gmtime(t)
        return HOUR_OF_DAY[tm.tm_hour] * (weekend if tm.tm_wday >= 5 else 1.0)

    def to_user(self, t, i, sender, client):
        rcpts = [self.users[i]]
        if i in self.archived:
            rcpts.append(f"archive@{DOMAIN}")
        self.msgs.append((t, rcpts, sender, client))

    def poisson_hours(self, rate_of_hour):
        """Yields times of a Poisson process whose rate per hour is rate_of_hour(hour start)."""
        rnd = self.rnd
        for h in range(DAYS * 24):
            lo = self.start + h * 3600
            for _ in range(poisson(rnd, rate_of_hour(lo))):
                yield lo + 3600 * rnd.random()

    # --- traffic -----------------------------------------------------------------------------------
    def ordinary(self):
        rnd = self.rnd
        wsum = sum(HOUR_OF_DAY)
        for day in range(DAYS):
            d0 = self.start + day * DAY
            factor = WEEKEND if day % 7 >= 5 else 1.0
            for i in range(MAILBOXES):
                n = poisson(rnd, self.per_weekday[i] * factor * self.volume)
                for _ in range(n):
                    # An hour by the daily rhythm, a second within it.
                    u, h = rnd.random() * wsum, 0
                    while u > HOUR_OF_DAY[h] and h < 23:
                        u -= HOUR_OF_DAY[h]
                        h += 1
                    t = d0 + h * 3600 + 3600 * rnd.random()
                    v = rnd.random()
                    if v < 0.15:  # internal mail from a colleague
                        j = rnd.choice(self.colleagues[i])
                        self.to_user(t, i, self.users[j], f"client{j % 254}.{DOMAIN}[10.1.{j % 250}.{j % 199 + 1}]")
                    elif v < 0.70:  # one of the mailbox's own correspondents
                        self.to_user(t, i, *self.ext[rnd.choice(self.corr[i])])
                    else:  # anyone from the heavy-tailed pool
                        self.to_user(t, i, *self.ext[self.zipf_sender()])

    def mailing_list(self):
        rnd = self.rnd
        members = [f"{FIRST[j % 26]}.m{j}@lists-member{j % 13}.example.org" for j in range(40)]
        relays = [f"relay{k}.lists.example.net[198.51.100.{10 + k}]" for k in range(4)]

        def rate(t):
            h = time.gmtime(t).tm_hour
            day = 1.0 if 7 <= h < 22 else 0.12
            return 16.0 * day * (0.6 if time.gmtime(t).tm_wday >= 5 else 1.0)
        for t in self.poisson_hours(rate):
            self.msgs.append((t, [f"list@{DOMAIN}"], rnd.choice(members), rnd.choice(relays)))

    def tickets(self):
        rnd = self.rnd
        hourly = {}

        def rate(t):
            tm = time.gmtime(t)
            if tm.tm_wday < 5 and 8 <= tm.tm_hour < 18:
                return hourly.setdefault(t, rnd.uniform(2.0, 6.0))
            return 0.25
        for t in self.poisson_hours(rate):
            self.msgs.append((t, [f"tickets@{DOMAIN}"], *rnd.choice(self.customers)))
        # Storms: once or twice a week, any hour of any day, 60-90 tickets in under 30 minutes.
        for week in range(3):
            for day in sorted(rnd.sample(range(7), rnd.randint(1, 2))):
                t0 = self.start + (week * 7 + day) * DAY + rnd.uniform(0, DAY - 3600)
                count = rnd.randint(60, 90)
                span = rnd.uniform(12, 28) * 60
                times = sorted(t0 + span * rnd.random() for _ in range(count))
                for t in times:
                    self.msgs.append((t, [f"tickets@{DOMAIN}"], *rnd.choice(self.customers)))
                self.labels["storms"].append({"recipient": f"tickets@{DOMAIN}", "start": ms(times[0]),
                                              "end": ms(times[-1]), "messages": count})

    def newsletters(self):
        rnd = self.rnd
        for week in range(3):
            t0 = self.start + week * 7 * DAY + 9 * 3600 + rnd.uniform(-300, 300)
            span = rnd.uniform(180, 360)
            order = list(range(MAILBOXES))
            rnd.shuffle(order)
            times = sorted(t0 + span * rnd.random() for _ in order)
            for i, t in zip(order, times):
                self.to_user(t, i, "news@mail.vendor-news.example", "out3.vendor-news.example[203.0.113.80]")
            self.labels["newsletters"].append({"start": ms(times[0]), "end": ms(times[-1]), "messages": MAILBOXES,
                                               "archive_copies": len(self.archived)})

    def bounces(self):
        rnd = self.rnd
        for t in self.poisson_hours(lambda t: 1.2 * (0.5 + self.hour_weight(t, 0.6))):
            self.msgs.append((t, [f"bounces@{DOMAIN}"], "", self.ext[self.zipf_sender()][1]))
        for week in range(3):
            for day in sorted(rnd.sample(range(7), 2)):
                t0 = self.start + (week * 7 + day) * DAY + rnd.uniform(7 * 3600, 20 * 3600)
                count = rnd.randint(10, 20)
                times = sorted(t0 + rnd.uniform(60, 600) * rnd.random() for _ in range(count))
                for t in times:
                    self.msgs.append((t, [f"bounces@{DOMAIN}"], "", self.ext[rnd.randrange(len(self.ext))][1]))
                self.labels["bounce_bursts"].append({"recipient": f"bounces@{DOMAIN}", "start": ms(times[0]),
                                                     "end": ms(times[-1]), "messages": count})

    # --- floods (week three) -------------------------------------------------------------------------
    def floods(self):
        rnd = self.rnd
        candidates = [i for i in range(MAILBOXES) if i not in self.archived]
        quiet = min(candidates, key=lambda i: self.per_weekday[i])
        normal = sorted((i for i in candidates if i != quiet), key=lambda i: self.per_weekday[i])
        normal = normal[len(normal) // 10: len(normal) * 9 // 10]  # neither the quietest nor the busiest
        targets = rnd.sample(normal, 4) + [quiet]
        days = rnd.sample(range(14, 21), 5)

        def day0(k):
            return self.start + days[k] * DAY

        def flood(k, kind, t0, times, source):
            times = sorted(times)
            target = targets[k]
            for j, t in enumerate(times):
                self.msgs.append((t, [self.users[target]], *source(j)))
            self.labels["floods"].append({"recipient": self.users[target], "start": ms(times[0]), "end": ms(times[-1]),
                                          "messages": len(times), "kind": kind,
                                          "usual_per_weekday": round(self.per_weekday[target], 1)})

        def many(k):  # a new sender and client for every message: subscription confirmations
            return lambda j: (f"noreply{j}@site{rnd.randrange(100000)}.example",
                              f"mta{j}.sub{k}.example"
                              f"[{100 + j // 250 % 100}.{k * 20 + j % 20}.{j % 250}.{1 + j % 200}]")

        # 1. Subscription bomb: 300-600 confirmations in 25 minutes, office hours.
        t0 = day0(0) + rnd.uniform(8.5, 16) * 3600
        n = rnd.randint(300, 600)
        flood(0, "subscription bomb (many senders and clients)", t0,
              [t0 + 1500 * rnd.random() for _ in range(n)], many(0))
        # 2. One client: ~400 messages in 10 minutes.
        t0 = day0(1) + rnd.uniform(9, 17) * 3600
        n = rnd.randint(350, 450)
        flood(1, "mail bomb (one client)", t0, [t0 + 600 * rnd.random() for _ in range(n)],
              lambda j: ("bulk@bomber.example", "bomber.example[203.0.113.66]"))
        # 3. Slow flood: about one a minute for 6 hours, from a few senders.
        t0 = day0(2) + rnd.uniform(7, 12) * 3600
        times, t = [], t0
        while t < t0 + 6 * 3600:
            times.append(t)
            t += rnd.uniform(30, 90)
        flood(2, "slow flood (1/min for 6 h)", t0, times,
              lambda j: (f"promo{j % 7}@slow-sender{j % 3}.example",
                         f"out{j % 3}.slow-sender{j % 3}.example[203.0.113.{120 + j % 3}]"))
        # 4. Night bomb: 200-400 messages in 15-20 minutes between 01:00 and 04:00.
        t0 = day0(3) + rnd.uniform(1, 4) * 3600
        n, span = rnd.randint(200, 400), rnd.uniform(900, 1200)
        flood(3, "night bomb (many senders)", t0, [t0 + span * rnd.random() for _ in range(n)], many(3))
        # 5. The quietest mailbox: 100-200 messages in 20 minutes from a few dozen senders.
        t0 = day0(4) + rnd.uniform(9, 18) * 3600
        n = rnd.randint(100, 200)
        flood(4, "bomb to a quiet mailbox (a few dozen senders)", t0,
              [t0 + 1200 * rnd.random() for _ in range(n)],
              lambda j: (f"offers{j % 30}@shop{j % 30}.example", f"mx.shop{j % 30}.example[203.0.113.{150 + j % 30}]"))
        self.labels["floods"].sort(key=lambda f: f["start"])

    def build(self):
        self.ordinary()
        self.mailing_list()
        self.tickets()
        self.newsletters()
        self.bounces()
        self.floods()
        self.msgs = [m for m in self.msgs if self.start <= m[0] < self.end]
        self.msgs.sort(key=lambda m: m[0])
        self.labels["archived_mailboxes"] = [self.users[i] for i in sorted(self.archived)]
        self.labels["messages"] = len(self.msgs)
        self.labels["deliveries"] = sum(len(m[1]) for m in self.msgs)
        return self.msgs


# --- rendering (bench/make_maillog.py's) ---------------------------------------------------------------
def render(msgs, out, fmt, host, seed):
    """Writes the messages' log lines in time order, concurrent messages interleaved; returns the count."""
    rnd = random.Random(seed ^ 0x5EED)
    log = MailLog(Writer(out, host), fmt, DOMAIN, rnd, rnd.randrange(1 << 20))
    for n, (t, rcpts, sender, client) in enumerate(msgs):
        log.message(t, rcpts, sender, client, f"{int(t):x}.{n:x}@{sender.partition('@')[2] or 'bounce.' + DOMAIN}")
    log.close()
    return log.lines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", help="log file to write, - for standard output")
    ap.add_argument("--labels", required=True, help="JSON file to write the labels to")
    ap.add_argument("--format", choices=["postfix", "sendmail"], default="postfix")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-10-05", help="first day, a Monday (UTC, default 2026-10-05)")
    ap.add_argument("--volume", type=float, default=1.0,
                    help="scale the ordinary mailboxes' volume (default 1.0)")
    ap.add_argument("--host", default="mail", help="syslog host name")
    a = ap.parse_args()
    if a.volume <= 0:
        ap.error("--volume must be positive")

    began = time.time()
    sc = Scenario(a.seed, parse_start(a.start), a.volume)
    msgs = sc.build()
    out = sys.stdout if a.output == "-" else open(a.output, "w", buffering=1 << 20)
    lines = render(msgs, out, a.format, a.host, a.seed)
    if out is not sys.stdout:
        out.close()
    lab = sc.labels
    lab["format"] = a.format
    lab["lines"] = lines
    with open(a.labels, "w") as f:
        json.dump(lab, f, indent=1)
        f.write("\n")

    err = sys.stderr
    print(f"detection_scenario: {lines} lines, {lab['messages']} messages, {lab['deliveries']} deliveries "
          f"({a.format}), {utc(lab['start'])} .. {utc(lab['end'])}, {time.time() - began:.1f} s", file=err)
    counts = {}
    for _, rcpts, _, _ in msgs:
        for r in rcpts:
            counts[r] = counts.get(r, 0) + 1
    print("detection_scenario: busy accounts " + ", ".join(f"{r} {counts.get(r, 0)}" for r in lab["busy_accounts"]),
          file=err)
    for s in lab["storms"]:
        print(f"detection_scenario: storm      {utc(s['start'])} tickets@ {s['messages']} in "
              f"{(s['end'] - s['start']) / 60:.0f} min", file=err)
    for f in lab["floods"]:
        print(f"detection_scenario: flood      {utc(f['start'])} {f['recipient']} {f['messages']} in "
              f"{(f['end'] - f['start']) / 60:.0f} min: {f['kind']}", file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

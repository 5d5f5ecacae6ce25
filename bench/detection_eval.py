#!/usr/bin/env python3
"""Replay a labelled scenario (bench/detection_scenario.py) through `rcptguard ingest` and score
the alert episodes it stored: which floods were flagged, how fast and for how long, and which
episodes were false alarms.

    bench/detection_eval.py --rcptguard build/rcptguard --log /tmp/detect/postfix.log \\
        --labels /tmp/detect/labels.json [--db /tmp/detect/postfix.db] [--set detection.mode=enforce] [--json OUT.json]

It runs `RCPTGUARD ingest -c /dev/null -o store.path=DB [-o KEY=VALUE ...] LOG` into a fresh
database (--db is deleted first; without --db a temporary one is used and removed), prints
ingest's own summary (parse errors, expired messages), then reads the `episode` table with
Python's sqlite3 and prints:

  floods flagged   for each labelled flood: whether an episode of its recipient overlaps
                   [flood start, flood end + 10 min], the delay from the flood's first message
                   to the episode's start, and how long after the flood's last message the
                   episode closed (episode end - flood end; "still open" if it never closed)
  false alarms     episodes that overlap no labelled flood of their recipient, in week one
                   (started before day 7, while baselines are still learning) and after it, by
                   recipient, each with start, duration, peak and the labelled busy-account event
                   (ticket storm, newsletter, bounce burst) it coincides with, if any
  longest episode  the longest episode overall (an open one counts up to its last update)

An episode's end: `ended_at` when the schema has it, else `updated` once `ended` = 1 (the engine
re-sends the row at each new peak and when the episode closes, so a closed row's `updated` is its
close time). Times are unix seconds; a database storing milliseconds or microseconds is detected
from the magnitudes and converted (the eval says so). --skip-ingest scores an existing --db.
Python 3 standard library only.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

GRACE = 600  # a flood counts as flagged if an episode overlaps [start, end + GRACE]
WEEK = 7 * 86400


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def dur(s):
    """A duration as 1d02h03m, 2h03m, 4m05s or 12s."""
    if s is None:
        return "-"
    neg, s = s < 0, abs(int(round(s)))
    d, h, m, sec = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    text = f"{d}d{h:02d}h{m:02d}m" if d else f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"
    return "-" + text if neg else text


def table(rows, header):
    """Plain-text table with columns padded to their widest cell."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)


def run_ingest(binary, log, db, settings):
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    cmd = [binary, "ingest", "-c", "/dev/null", "-o", f"store.path={db}"]
    for kv in settings:
        cmd += ["-o", kv]
    cmd.append(log)
    print("$ " + " ".join(cmd))
    began = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.time() - began
    for line in (proc.stdout + proc.stderr).splitlines():
        print("  | " + line)
    if proc.returncode != 0:
        raise SystemExit(f"detection_eval: ingest exited with {proc.returncode}")
    return {"command": cmd, "seconds": round(took, 2), "output": (proc.stdout + proc.stderr).splitlines()}


def load_episodes(db):
    """Episode rows as dicts with start/end/last in unix seconds (end None while open)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    cols = {r["name"] for r in con.execute("PRAGMA table_info(episode)")}
    if not cols:
        raise SystemExit(f"detection_eval: {db} has no episode table")
    rows = [dict(r) for r in con.execute("SELECT * FROM episode ORDER BY started, id")]
    con.close()
    # Units: unix seconds are ~1.8e9 now; milliseconds ~1.8e12, microseconds ~1.8e15.
    biggest = max((r["started"] for r in rows), default=0)
    if biggest > 1e14:
        scale, unit = 1e6, "microseconds"
    elif biggest > 1e11:
        scale, unit = 1e3, "milliseconds"
    else:
        scale, unit = 1, "seconds"
    episodes = []
    for r in rows:
        closed = bool(r.get("ended"))
        if "ended_at" in cols:
            end = r["ended_at"] if closed or r["ended_at"] is not None else None
            if closed and end is None:
                end = r["updated"]
        else:
            end = r["updated"] if closed else None
        episodes.append({
            "id": r["id"], "recipient": r["recipient"],
            "start": r["started"] / scale, "last": r["updated"] / scale,
            "end": None if end is None else end / scale,
            "peak_level": r.get("peak_level"), "peak_score": r.get("peak_score"),
            "peak_window": r.get("peak_window"), "peak_observed": r.get("peak_observed"),
            "peak_baseline": r.get("peak_baseline"), "summary": r.get("summary"),
        })
    return episodes, unit, sorted(cols)


def overlaps(ep, lo, hi):
    end = ep["end"] if ep["end"] is not None else float("inf")
    return ep["start"] <= hi and end >= lo


def context(ep, labels):
    """The labelled busy-account event an episode coincides with, if any."""
    hits = []
    for key, name in (("storms", "ticket storm"), ("bounce_bursts", "bounce burst")):
        for ev in labels.get(key, []):
            if ev["recipient"] == ep["recipient"] and overlaps(ep, ev["start"], ev["end"] + GRACE):
                hits.append(f"{name} {utc(ev['start'])[5:16]}")
    if ep["recipient"].startswith("archive@") or ep["recipient"] in labels.get("archived_mailboxes", []) \
            or ep["recipient"].startswith("user"):
        for ev in labels.get("newsletters", []):
            if overlaps(ep, ev["start"], ev["end"] + GRACE):
                hits.append(f"newsletter {utc(ev['start'])[5:16]}")
    return ", ".join(hits)


def evaluate(episodes, labels):
    start = labels["start"]
    floods, matched = [], set()
    for f in labels["floods"]:
        eps = [e for e in episodes if e["recipient"] == f["recipient"] and overlaps(e, f["start"], f["end"] + GRACE)]
        for e in eps:
            matched.add(e["id"])
        e = eps[0] if eps else None
        floods.append({
            "kind": f["kind"], "recipient": f["recipient"], "start": f["start"], "end": f["end"],
            "messages": f["messages"], "flagged": e is not None, "episodes": len(eps),
            "delay": None if e is None else e["start"] - f["start"],
            "closed_after": None if e is None or e["end"] is None else e["end"] - f["end"],
            "still_open": e is not None and e["end"] is None,
            "peak": None if e is None else f"{e['peak_level']} {e['peak_score']:.2f} ({e['peak_window']})",
        })
    false = []
    for e in episodes:
        if e["id"] in matched:
            continue
        false.append(dict(e, week_one=e["start"] < start + WEEK,
                          duration=(e["end"] if e["end"] is not None else e["last"]) - e["start"],
                          context=context(e, labels)))

    def by_recipient(eps):
        out = {}
        for e in eps:
            r = out.setdefault(e["recipient"], {"episodes": 0, "total_duration": 0.0})
            r["episodes"] += 1
            r["total_duration"] += e["duration"]
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["episodes"], kv[0])))

    longest = None
    for e in episodes:
        d = (e["end"] if e["end"] is not None else e["last"]) - e["start"]
        if longest is None or d > longest["duration"]:
            longest = {"recipient": e["recipient"], "start": e["start"], "duration": d, "open": e["end"] is None,
                       "flood": e["id"] in matched}
    week1 = [e for e in false if e["week_one"]]
    later = [e for e in false if not e["week_one"]]
    return {
        "floods": floods,
        "floods_flagged": sum(f["flagged"] for f in floods),
        "false_alarms_week_one": len(week1),
        "false_alarms_week_one_by_recipient": by_recipient(week1),
        "false_alarms_after_week_one": len(later),
        "false_alarms_after_week_one_by_recipient": by_recipient(later),
        "false_alarm_episodes": false,
        "episodes": len(episodes),
        "longest_episode": longest,
    }


def report(res, labels):
    print(f"\nFloods flagged: {res['floods_flagged']}/{len(res['floods'])}")
    rows = []
    for f in res["floods"]:
        closed = "still open" if f["still_open"] else dur(f["closed_after"])
        rows.append([f["kind"], f["recipient"], utc(f["start"])[5:16], f["messages"], dur(f["end"] - f["start"]),
                     "yes" if f["flagged"] else "NO", dur(f["delay"]), closed, f["peak"] or "-"])
    print(table(rows, ["flood", "recipient", "start", "msgs", "lasts", "flagged", "delay",
                       "closed after flood end", "peak"]))

    for title, key, week_one in (("week one (days 0-6)", "false_alarms_week_one", True),
                                 ("after week one (days 7-20)", "false_alarms_after_week_one", False)):
        print(f"\nFalse-alarm episodes {title}: {res[key]}")
        per = res[key + "_by_recipient"]
        if per:
            print("  by recipient: " + ", ".join(f"{r} {v['episodes']} ({dur(v['total_duration'])} in all)"
                                                 for r, v in per.items()))
            rows = [[e["recipient"], utc(e["start"])[5:16], "day %d" % ((e["start"] - labels["start"]) // 86400),
                     dur(e["duration"]) + (" (open)" if e["end"] is None else ""),
                     f"{e['peak_level']} {e['peak_score']:.2f}", f"{e['peak_observed']:.0f}/{e['peak_window']}",
                     f"{e['peak_baseline']:.1f}", e["context"] or "-"]
                    for e in res["false_alarm_episodes"] if e["week_one"] == week_one]
            print(table(rows, ["recipient", "started", "", "duration", "peak", "observed", "baseline",
                               "coincides with"]))

    lo = res["longest_episode"]
    if lo:
        print(f"\nLongest episode: {dur(lo['duration'])}, {lo['recipient']} from {utc(lo['start'])}"
              f"{' (still open)' if lo['open'] else ''}{' (a labelled flood)' if lo['flood'] else ''}")
    print(f"Episodes in all: {res['episodes']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rcptguard", help="the rcptguard binary (not needed with --skip-ingest)")
    ap.add_argument("--log", help="the scenario's log (bench/detection_scenario.py)")
    ap.add_argument("--labels", required=True, help="the scenario's labels JSON")
    ap.add_argument("--db", help="database to (re)create; default a temporary one, removed afterwards")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for ingest (-o KEY=VALUE), repeatable")
    ap.add_argument("--skip-ingest", action="store_true", help="score the existing --db, do not replay")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON (- for standard output)")
    a = ap.parse_args()
    for kv in a.set:
        if "=" not in kv:
            ap.error(f"--set {kv!r}: expected KEY=VALUE")
    if a.skip_ingest and not a.db:
        ap.error("--skip-ingest needs --db")
    if not a.skip_ingest and not (a.rcptguard and a.log):
        ap.error("--rcptguard and --log are needed (or --skip-ingest --db DB)")

    with open(a.labels) as f:
        labels = json.load(f)
    tmp = None
    db = a.db
    if not db:
        tmp = tempfile.mkdtemp(prefix="detection-eval.")
        db = os.path.join(tmp, "detect.db")
    try:
        ingest = None if a.skip_ingest else run_ingest(a.rcptguard, a.log, db, a.set)
        episodes, unit, cols = load_episodes(db)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if unit != "seconds":
        print(f"detection_eval: episode times are stored in {unit}; converted to seconds")
    outside = [e for e in episodes if not labels["start"] - 86400 <= e["start"] <= labels["end"] + 86400]
    if outside:
        print(f"detection_eval: warning: {len(outside)} episodes start outside the scenario "
              f"({utc(labels['start'])} .. {utc(labels['end'])}): wrong units or a reused database?")
    res = evaluate(episodes, labels)
    print(f"\nScenario {utc(labels['start'])} .. {utc(labels['end'])}, {labels.get('messages', '?')} messages, "
          f"{labels.get('deliveries', '?')} deliveries ({labels.get('format', '?')}, seed {labels.get('seed', '?')})"
          + (f"; settings: {' '.join(a.set)}" if a.set else ""))
    report(res, labels)
    if a.json:
        out = {"labels": a.labels, "log": a.log, "settings": a.set, "ingest": ingest, "time_unit": unit,
               "episode_columns": cols, **res}
        text = json.dumps(out, indent=1, default=str) + "\n"
        if a.json == "-":
            sys.stdout.write(text)
        else:
            with open(a.json, "w") as f:
                f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write (or append to) an attachment-heavy mbox for the spool-scanner benchmark.

    bench/make_mbox.py PATH --messages 3500 --attachment-kb 300       # a ~1.4 GB mbox
    bench/make_mbox.py PATH --append-bytes 1048576                   # append ~1 MiB more

Each message is a multipart/mixed with a short text part and one random binary attachment,
base64-encoded (76-column lines, as MUAs write them). Every --repeat-every'th message carries one of
a few fixed attachments instead of a fresh random one, so the scanner has repeats to find.
Standard library only. Dates are "now", so the copies fall inside spool.window.
"""
import argparse
import base64
import email.utils
import os
import random
import sys
import time


def message(i, payload, name, now):
    date = email.utils.formatdate(now, localtime=False)
    ctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(now))
    body = base64.encodebytes(payload)
    head = (
        f"From sender{i % 97}@sender.test {ctime}\n"
        f"Return-Path: <sender{i % 97}@sender.test>\n"
        f"From: Sender {i % 97} <sender{i % 97}@sender.test>\n"
        f"To: bench@example.test\n"
        f"Subject: report {i}\n"
        f"Date: {date}\n"
        f"Message-ID: <bench-{i}-{int(now)}@sender.test>\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="b{i}"\n'
        f"\n"
        f"--b{i}\n"
        f"Content-Type: text/plain; charset=us-ascii\n"
        f"\n"
        f"Message {i}, see the attachment.\n"
        f"\n"
        f"--b{i}\n"
        f'Content-Type: application/octet-stream; name="{name}"\n'
        f"Content-Transfer-Encoding: base64\n"
        f'Content-Disposition: attachment; filename="{name}"\n'
        f"\n"
    ).encode()
    return head + body + f"\n--b{i}--\n\n".encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--messages", type=int, default=3500)
    ap.add_argument("--attachment-kb", type=int, default=300)
    ap.add_argument("--repeat-every", type=int, default=10, help="every Nth message reuses a fixed attachment")
    ap.add_argument("--repeated", type=int, default=5, help="number of distinct fixed attachments")
    ap.add_argument("--append-bytes", type=int, default=0,
                    help="append messages (attachment 30 KB) until this many bytes are added, then stop")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    now = time.time()
    fixed = [rnd.randbytes(a.attachment_kb * 1024) for _ in range(a.repeated)]
    written = 0
    with open(a.path, "ab") as f:
        if a.append_bytes:
            start = int(now * 1000) % 1000000000  # distinct Message-IDs from the first run
            i = 0
            while written < a.append_bytes:
                m = message(start + i, os.urandom(30 * 1024), f"append-{i}.bin", now)
                f.write(m)
                written += len(m)
                i += 1
            print(f"make_mbox: appended {i} messages, {written} bytes to {a.path}")
            return
        for i in range(a.messages):
            if a.repeat_every and i % a.repeat_every == 0:
                k = (i // a.repeat_every) % a.repeated
                payload, name = fixed[k], f"invoice-{k}.pdf"
            else:
                payload, name = os.urandom(a.attachment_kb * 1024), f"data-{i}.bin"
            m = message(i, payload, name, now)
            f.write(m)
            written += len(m)
    print(f"make_mbox: {a.messages} messages, {written} bytes in {a.path}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Reads a topic straight from the broker, bypassing Envoy, and prints what is stored at rest: one line
per record, "held <key> [<what it is>] <n> bytes: <hex of the first bytes>", for ./meshcrypt demo to show.

Needs only kcat: kcat's %K/%S give the key and value lengths, so binary values are framed exactly.
Usage: broker-tap.py BROKER TOPIC   (reads from the end of the topic until SIGINT/SIGTERM)
"""
import signal
import subprocess
import sys

MAGIC = b"\x00MCE"
SHOWN = 16


def read_until(stream, stop):
    out = bytearray()
    while True:
        b = stream.read(1)
        if not b:
            raise EOFError
        if b == stop:
            return bytes(out)
        out += b


def read_exact(stream, n):
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def describe(value):
    if value is None:
        return "null (tombstone)"
    if value.startswith(MAGIC) and len(value) > len(MAGIC):
        return f"meshcrypt envelope v{value[len(MAGIC)]}"
    return "PLAINTEXT"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: broker-tap.py BROKER TOPIC")
    broker, topic = sys.argv[1:]
    # -u: unbuffered output; -o end: only what arrives from now on; a missing topic is awaited
    kcat = subprocess.Popen(
        ["kcat", "-b", broker, "-C", "-t", topic, "-o", "end", "-u", "-q",
         "-X", "topic.metadata.refresh.interval.ms=2000", "-f", "%K:%k%S:%s"],
        stdout=subprocess.PIPE)
    stop = lambda *_: kcat.terminate()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    out = kcat.stdout
    try:
        while True:
            klen = int(read_until(out, b":"))
            key = read_exact(out, klen).decode("utf-8", "replace") if klen >= 0 else "(null)"
            vlen = int(read_until(out, b":"))
            value = read_exact(out, vlen) if vlen >= 0 else None
            shown = "" if value is None else value[:SHOWN].hex(" ") + (" .." if vlen > SHOWN else "")
            # the verdict first: a narrow demo column cuts the hex, not what the bytes are
            print(f"held {key} [{describe(value)}] {max(vlen, 0)} bytes: {shown}", flush=True)
    except EOFError:
        pass
    sys.exit(kcat.wait() if kcat.poll() is None else 0)


if __name__ == "__main__":
    main()

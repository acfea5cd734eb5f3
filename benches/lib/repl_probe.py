#!/usr/bin/env python3
"""Probes for benches/replication-load.sh, over raw RESP (no client library needed).

  repl_probe.py latency PORT STOPFILE
      Alternates GET and SET of random keys key:<i> on one connection, one request at a
      time, until STOPFILE exists; prints "GET-p50 GET-p99 SET-p50 SET-p99 count" in ms.
  repl_probe.py lag PRIMARY REPLICA SECONDS
      Every 100 ms notes the primary's master_repl_offset and times how long the replica
      takes to reach it; prints "median-ms p99-ms max-ms samples".
"""
import os
import random
import socket
import statistics
import sys
import time


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        return rest

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self.reply()


def field(conn, name):
    info = conn.cmd("INFO", "replication").decode()
    for line in info.split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


def latency(port, stopfile, keys):
    c = Conn(port)
    gets, sets = [], []
    value = b"v" * 100
    while not os.path.exists(stopfile):
        k = b"key:%d" % random.randrange(keys)
        t = time.perf_counter()
        c.cmd(b"GET", k)
        gets.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        c.cmd(b"SET", k, value)
        sets.append((time.perf_counter() - t) * 1000)
    print(f"{pct(gets, .5):.3f} {pct(gets, .99):.3f} {pct(sets, .5):.3f} {pct(sets, .99):.3f} {len(gets)}")


def lag(primary, replica, seconds):
    p, r = Conn(primary), Conn(replica)
    lags = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        target = int(field(p, "master_repl_offset"))
        t = time.perf_counter()
        while int(field(r, "slave_repl_offset") or 0) < target:
            time.sleep(0.0005)
        lags.append((time.perf_counter() - t) * 1000)
        time.sleep(0.1)
    print(f"{statistics.median(lags):.2f} {pct(lags, .99):.2f} {max(lags):.2f} {len(lags)}")


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        latency(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "lag":
        lag(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(__doc__)

#!/usr/bin/env python3
"""What the cluster bus costs per change and per hostile message (docs/operations.md, "What a
peer can cost"): one process of 2 nodes on the bus, node 1 owning every slot and meeting
node 2; then
  - CLUSTER SETSLOT 100 NODE <other>/<self> on node 1, 600 calls: median, p90, max latency;
  - one PING on node 1's bus port signed as node 2 with 65,535 gossip entries reporting node
    2 failing, followed by an empty PING: time until the first PONG (the bus thread's work).
Usage: benches/cluster-bus-cost.py BINARY BASEPORT   (SETSLOT_ONLY=1 skips the second part)
"""
import socket, struct, subprocess, sys, time, os, shutil, statistics
binary, base = sys.argv[1], int(sys.argv[2])
wd = f"/tmp/cluster-bus-cost-{base}"; shutil.rmtree(wd, ignore_errors=True); os.makedirs(wd)
proc = subprocess.Popen([binary, "--port", str(base), "--shards", "2", "--loglevel", "warning",
    "--cluster-enabled", "yes", "--cluster-bus", "yes", "--cluster-node-timeout", "5000"], cwd=wd,
    stdout=subprocess.DEVNULL)
def conn(p):
    for _ in range(100):
        try: return socket.create_connection(("127.0.0.1", p))
        except OSError: time.sleep(0.1)
def cmd(s, *a):
    s.sendall(b"".join([b"*%d\r\n" % len(a)] + [b"$%d\r\n%s\r\n" % (len(x), x) for x in (w.encode() if isinstance(w, str) else w for w in a)]))
    buf = b""
    while True:
        buf += s.recv(65536)
        if buf.endswith(b"\r\n") and (buf[:1] != b"$" or buf.count(b"\r\n") >= 2) and (buf[:1] not in b"=" ):
            return buf
try:
    a, b = conn(base + 1), conn(base + 2)
    cmd(a, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    cmd(a, "CLUSTER", "MEET", "127.0.0.1", str(base + 2), str(base + 10002))
    ida = cmd(a, "CLUSTER", "MYID").split(b"\r\n")[1].decode()
    idb = cmd(b, "CLUSTER", "MYID").split(b"\r\n")[1].decode()
    time.sleep(3)
    lat = []
    for i in range(300):
        for who in (idb, ida):
            t = time.perf_counter(); r = cmd(a, "CLUSTER", "SETSLOT", "100", "NODE", who); lat.append(time.perf_counter() - t)
            assert r.startswith(b"+OK"), r
    lat.sort()
    print(f"SETSLOT NODE (600 calls): median {statistics.median(lat)*1e3:.2f} ms, p90 {lat[int(len(lat)*.9)]*1e3:.2f} ms, max {lat[-1]*1e3:.2f} ms")
    if os.environ.get("SETSLOT_ONLY"): sys.exit(0)
    # One PING signed as node b, 65535 gossip entries reporting b failing, then a PING: time to its PONG.
    def frame(count, data):
        h = bytearray(2256); h[:4] = b"RCmb"; h[8:10] = struct.pack(">H", 1); h[10:12] = struct.pack(">H", base + 2)
        h[14:16] = struct.pack(">H", count); h[40:80] = idb.encode(); h[2248:2250] = struct.pack(">H", base + 10002)
        h[2250:2252] = struct.pack(">H", 1); m = bytes(h) + data
        return m[:4] + struct.pack(">I", len(m)) + m[8:]
    g = bytearray(104); g[:40] = idb.encode(); g[98:100] = struct.pack(">H", 4)
    s = socket.create_connection(("127.0.0.1", base + 10001)); s.settimeout(300)
    t = time.perf_counter(); s.sendall(frame(65535, bytes(g) * 65535) + frame(0, b""))
    n = 0
    while n < 8:  # the first PONG answers the flood PING
        n += len(s.recv(8 - n))
    print(f"PING with 65535 PFAIL gossip entries: PONG after {(time.perf_counter() - t)*1e3:.0f} ms")
    t = time.perf_counter(); r = cmd(a, "PING"); print(f"client PING after it: {(time.perf_counter()-t)*1e3:.1f} ms")
finally:
    proc.terminate(); proc.wait()

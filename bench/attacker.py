#!/usr/bin/env python3
"""Attackers for the soak (bench/soak.ts), from loopback source addresses other than 127.0.0.1.

Deno.connect cannot bind a source address; Python can, and the whole of 127.0.0.0/8 is loopback
on Linux, so one attacker can be 127.0.0.5 while the well-behaved clients are 127.0.0.1 and the
servers' per-address limits tell them apart.

    python3 bench/attacker.py KIND --server echo|chat --port PORT --source 127.0.0.N \
        [--count N] [--seconds S]

KIND:
  reset-storm       connect COUNT times (300) in quick succession, each closed at once with a
                    reset (SO_LINGER 0)
  slowloris         hold COUNT connections (150): chat, one byte every 2 s and never a newline;
                    echo, idle; a connection the server closes is opened again (at most 4 x COUNT)
  idle-holders      open as many of COUNT connections (400) as the server takes, hold them idle
  flood-member      chat: one member sending lines far above the rate limit, reading its replies
  connection-flood  echo: COUNT connections (600), 100 at a time, each with 5 pipelined requests

Every loop is bounded in count and in time (--seconds, at most 60): the attacker exits by
itself. It talks only to 127.0.0.1:PORT. At the end it prints one JSON line of what it saw.
"""

import argparse
import json
import selectors
import socket
import struct
import sys
import time

MAX_SECONDS = 60.0
MAX_COUNT = 2000
CONNECT_TIMEOUT = 2.0
PER_ADDRESS = b"too many connections from your address"
BUSY = (b"ERROR server busy", b"* server full")
LINGER_RESET = struct.pack("ii", 1, 0)


class Attack:
    def __init__(self, args):
        self.args = args
        self.start = time.monotonic()
        self.deadline = self.start + min(args.seconds, MAX_SECONDS)
        self.sel = selectors.DefaultSelector()
        self.open = {}  # socket -> per-connection state
        self.stats = {
            "kind": args.kind,
            "server": args.server,
            "source": args.source,
            "opened": 0,  # connections established
            "connectFailed": 0,  # refused, timed out, or out of ports
            "refusedPerAddress": 0,  # told "too many connections from your address"
            "busy": 0,  # told "server busy" / "server full"
            "closedByServer": 0,  # end of stream from the server
            "resetByServer": 0,
            "maxOpen": 0,
            "answered": 0,  # echo replies (connection-flood)
            "floodWarnings": 0,  # "* slow down" notices (flood-member)
            "linesSent": 0,
            "welcomeMs": None,  # flood-member: its own wait for the welcome
        }

    def left(self):
        return self.deadline - time.monotonic()

    def connect(self):
        """One connection from --source, or None. Blocking connect, bounded; then non-blocking."""
        if self.left() <= 0:
            return None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((self.args.source, 0))
            s.settimeout(min(CONNECT_TIMEOUT, max(0.05, self.left())))
            s.connect(("127.0.0.1", self.args.port))
        except OSError:
            s.close()
            self.stats["connectFailed"] += 1
            return None
        s.setblocking(False)
        self.stats["opened"] += 1
        return s

    def track(self, s):
        self.open[s] = {"partial": b"", "classified": False}
        self.sel.register(s, selectors.EVENT_READ)
        self.stats["maxOpen"] = max(self.stats["maxOpen"], len(self.open))

    def drop(self, s, reset=False):
        if s not in self.open:
            return
        self.sel.unregister(s)
        del self.open[s]
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        s.close()

    def on_line(self, s, line):
        """What a kind does with a line the server sent."""
        if line.startswith(b"Server received at "):
            self.stats["answered"] += 1
        elif line.startswith(b"* slow down"):
            self.stats["floodWarnings"] += 1

    def classify(self, state, data):
        if state["classified"]:
            return
        state["classified"] = True
        if PER_ADDRESS in data:
            self.stats["refusedPerAddress"] += 1
        elif any(data.startswith(b) for b in BUSY):
            self.stats["busy"] += 1

    def pump(self, timeout):
        """Reads whatever the servers sent for up to `timeout` s; notes closes."""
        if not self.open:
            time.sleep(max(0.0, min(timeout, self.left())))  # load: nothing to read
            return
        for key, _ in self.sel.select(max(0.0, min(timeout, self.left()))):
            s = key.fileobj
            state = self.open[s]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                self.stats["resetByServer"] += 1
                self.drop(s)
                continue
            if not data:
                self.stats["closedByServer"] += 1
                self.drop(s)
                continue
            self.classify(state, data)
            lines = (state["partial"] + data).split(b"\n")
            state["partial"] = lines.pop()[-8192:]
            for line in lines:
                self.on_line(s, line)

    def send(self, s, data):
        try:
            s.send(data)
            return True
        except BlockingIOError:
            return False  # its buffer is full: skip this time
        except OSError:
            self.stats["resetByServer"] += 1
            self.drop(s)
            return False

    def close_all(self):
        for s in list(self.open):
            self.drop(s)

    # --- the kinds -----------------------------------------------------------------------

    def reset_storm(self):
        for _ in range(self.args.count or 300):
            s = self.connect()
            if s is None:
                if self.left() <= 0:
                    break
                continue
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            s.close()

    def slowloris(self):
        count = self.args.count or 150
        budget = 4 * count
        chat = self.args.server == "chat"
        next_drip = time.monotonic()
        while self.left() > 0:
            while len(self.open) < count and budget > 0 and self.left() > 0:
                budget -= 1
                s = self.connect()
                if s is None:
                    break
                self.track(s)
            if chat and time.monotonic() >= next_drip:
                for s in list(self.open):
                    self.send(s, b"x")  # one byte, never a newline
                next_drip = time.monotonic() + 2.0
            self.pump(0.2)
        self.close_all()

    def idle_holders(self):
        for _ in range(self.args.count or 400):
            s = self.connect()
            if s is None:
                break  # as many as it can
            self.track(s)
            if len(self.open) % 50 == 0:
                self.pump(0)
        while self.left() > 0:
            self.pump(0.2)
        self.close_all()

    def flood_member(self):
        s = self.connect()
        if s is None:
            return
        self.track(s)
        connected = time.monotonic()
        welcomed = []
        original = self.on_line

        def on_line(conn, line):
            if not welcomed and line.startswith(b"* Welcome to the chat, "):
                welcomed.append(time.monotonic())
            original(conn, line)

        self.on_line = on_line
        sent = 0
        limit = self.args.count or 3000
        # 50 lines every 50 ms (about 1000 a second, a hundred times the default rate), for
        # most of the time, reading every reply so the server has no reason to drop it as slow.
        flood_until = self.start + 0.8 * (self.deadline - self.start)
        while s in self.open and sent < limit and time.monotonic() < flood_until:
            batch = b"".join(b"flood %d\n" % (sent + i) for i in range(50))
            if self.send(s, batch):
                sent += 50
            self.pump(0.05)
        self.stats["linesSent"] = sent
        if s in self.open:
            self.send(s, b"bye\n")
        while s in self.open and self.left() > 0:
            self.pump(0.2)
        self.close_all()
        if welcomed:
            self.stats["welcomeMs"] = round((welcomed[0] - connected) * 1000, 1)

    def connection_flood(self):
        total = self.args.count or 600
        window = 100
        done = 0
        while done < total and self.left() > 0:
            batch = []
            for _ in range(min(window, total - done)):
                s = self.connect()
                done += 1
                if s is None:
                    continue
                self.track(s)
                batch.append(s)
            for i, s in enumerate(batch):
                self.send(s, b"".join(b"pipelined %d-%d\n" % (done, i * 5 + k) for k in range(5)))
            while self.open and self.left() > 0:
                self.pump(0.2)
        self.close_all()


def main():
    parser = argparse.ArgumentParser(description="soak attackers (see bench/soak.ts)")
    parser.add_argument(
        "kind",
        choices=["reset-storm", "slowloris", "idle-holders", "flood-member", "connection-flood"],
    )
    parser.add_argument("--server", choices=["echo", "chat"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", required=True, help="a loopback address: 127.0.0.2 to .254")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    octets = args.source.split(".")
    if len(octets) != 4 or octets[0] != "127" or not all(o.isdigit() for o in octets):
        parser.error("--source must be a 127.x.y.z loopback address")
    if not 0 < args.port < 65536:
        parser.error("--port must be 1 to 65535")
    args.count = max(0, min(args.count, MAX_COUNT))
    attack = Attack(args)
    {
        "reset-storm": attack.reset_storm,
        "slowloris": attack.slowloris,
        "idle-holders": attack.idle_holders,
        "flood-member": attack.flood_member,
        "connection-flood": attack.connection_flood,
    }[args.kind]()
    attack.close_all()
    attack.stats["ms"] = round((time.monotonic() - attack.start) * 1000)
    sys.stdout.write(json.dumps(attack.stats) + "\n")


if __name__ == "__main__":
    main()

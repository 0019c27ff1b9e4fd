#!/usr/bin/env python3
"""The soak's traffic (benches/soak.sh): mixed requests through customs until a deadline.

Usage: drive.py PROXY_PORT SECONDS RATE DESK_KEY READER_KEY OUT_JSON

- RATE small requests per second in all (paced, spread over three
  connections), cycling through every class below;
- one connection pulling large exports in turn: a 2 MB governed one (the
  response policy masks it) and a 24 MiB `pass` one (streamed);
- one WebSocket tunnel held open the whole run, a message echoed every 0.2 s,
  and a short-lived tunnel (handshake, three messages, close) every 5 s.

Each answer is checked (status, and for governed bodies that no personal
data crossed). OUT_JSON gets per class: ok, failed, a few failure samples,
and the answers counted by (integration, route, status) for the audit
comparison. Exit status 0 whatever happened: the caller judges.
"""
import base64
import http.client
import json
import os
import socket
import sys
import threading
import time

from ws import encode_frame, read_frame

PORT, SECONDS, RATE = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
DESK, READER, OUT = sys.argv[4], sys.argv[5], sys.argv[6]
DEADLINE = time.monotonic() + SECONDS
SMALL_CONNECTIONS = 3
CLEAR = [b"4111 1111 1111 1111", b"078-05-1120", b"internal_notes", b"@example.com"]

INCIDENT = {
    "incidents": [
        {
            "id": 7,
            "title": "VPN down",
            "description": "Caller jane@example.com, card 4111 1111 1111 1111",
            "internal_notes": "VIP",
            "customer": {"name": "Jane Doe", "card_number": "4111 1111 1111 1111", "ssn": "078-05-1120"},
        }
    ]
}


def no_clear_data(body):
    return not any(c in body for c in CLEAR)


# name: (method, path, headers, body, expected status, (integration, route), body check)
CLASSES = {
    "pass-anonymous": ("GET", "/open/items/{n}", {}, None, 200, ("open", "items"), None),
    "pass-injected": ("GET", "/acme/items/{n}", {"X-Api-Key": DESK}, None, 200, ("acme", "read"), None),
    "pass-reader": ("GET", "/acme/items/{n}", {"Authorization": "Bearer " + READER}, None, 200, ("acme", "read"), None),
    "response-policy": ("GET", "/acme/incidents", {"X-Api-Key": DESK}, None, 200, ("acme", "incidents"), no_clear_data),
    "request-policy": ("POST", "/acme/incidents/{n}", {"X-Api-Key": DESK}, INCIDENT, 200, ("acme", "write"), None),
    "policy-refused": (
        "POST", "/acme/incidents/{n}", {"X-Api-Key": DESK},
        {"incidents": [{"id": 1, "customer": {"password": "hunter2"}}]}, 403, ("acme", "write"), None,
    ),
    "outside-routes": ("GET", "/acme/incidents", {"X-Api-Key": READER}, None, 403, ("acme", "incidents"), None),
    "unknown-key": ("GET", "/acme/items/{n}", {"X-Api-Key": "cst_not_a_key_of_anyone"}, None, 401, ("acme", "read"), None),
    "missing-key": ("GET", "/acme/items/{n}", {}, None, 401, ("acme", "read"), None),
    "no-route": ("GET", "/nowhere/{n}", {}, None, 404, ("", ""), None),
}
# Mostly traffic that crosses, some of every refusal.
SCHEDULE = (
    ["pass-anonymous"] * 4 + ["pass-injected"] * 4 + ["pass-reader"] * 2 + ["response-policy"] * 3
    + ["request-policy"] * 3 + ["policy-refused", "outside-routes", "unknown-key", "missing-key", "no-route"]
)
EXPORTS = {
    "export-governed": ("GET", "/acme/export", {"X-Api-Key": DESK}, None, 200, ("acme", "export"), no_clear_data),
    "export-pass": (
        "GET", "/acme/dump", {"X-Api-Key": DESK}, None, 200, ("acme", "dump"),
        lambda body: len(body) == 24 << 20,
    ),
}

LOCK = threading.Lock()
RESULT = {"classes": {}, "answers": {}, "ws": {"messages": 0, "tunnels": 0}}


def note(name, ok, why=None):
    with LOCK:
        c = RESULT["classes"].setdefault(name, {"ok": 0, "failed": 0, "samples": []})
        c["ok" if ok else "failed"] += 1
        if not ok and len(c["samples"]) < 5:
            c["samples"].append(why)


def answered(integration, route, status):
    key = f"{integration}/{route}/{status}"
    with LOCK:
        RESULT["answers"][key] = RESULT["answers"].get(key, 0) + 1


def request(conn, name, spec, n):
    method, path, headers, body, want, (integration, route), check = spec
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(headers)
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path.format(n=n), body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
    except (OSError, http.client.HTTPException) as e:
        conn.close()  # reconnects on the next request
        note(name, False, f"{type(e).__name__}: {e}")
        return
    answered(integration, route, resp.status)
    if resp.status != want:
        note(name, False, f"status {resp.status}: {payload[:200]!r}")
    elif check and not check(payload):
        note(name, False, f"body check failed ({len(payload)} bytes)")
    else:
        note(name, True)


def small(offset):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    interval = SMALL_CONNECTIONS / RATE
    n, due = offset, time.monotonic()
    while time.monotonic() < DEADLINE:
        name = SCHEDULE[n % len(SCHEDULE)]
        request(conn, name, CLASSES[name], n)
        n += SMALL_CONNECTIONS
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))
    conn.close()


def exports():
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    n = 0
    while time.monotonic() < DEADLINE:
        name = list(EXPORTS)[n % len(EXPORTS)]
        request(conn, name, EXPORTS[name], n)
        n += 1
    conn.close()


class Tunnel:
    """A WebSocket through customs: handshake, masked messages, echo check."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /acme/ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nX-Api-Key: {DESK}\r\n\r\n"
            ).encode()
        )
        self.stream = self.sock.makefile("rb")
        status = self.stream.readline().split(b" ")
        while self.stream.readline() not in (b"\r\n", b""):
            pass
        code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
        answered("acme", "ws", code)
        if code != 101:
            raise OSError(f"handshake answered {code}")
        with LOCK:
            RESULT["ws"]["tunnels"] += 1

    def echo(self, i):
        payload = f"{self.name} message {i}".encode()
        self.sock.sendall(encode_frame(0x1, payload, os.urandom(4)))
        frame = read_frame(self.stream)
        if frame != (0x1, payload):
            raise OSError(f"echo {i}: {frame!r}")
        with LOCK:
            RESULT["ws"]["messages"] += 1

    def close(self):
        self.sock.sendall(encode_frame(0x8, b"\x03\xe8", os.urandom(4)))
        frame = read_frame(self.stream)
        self.sock.close()
        if frame is None or frame[0] != 0x8:
            raise OSError(f"close answered {frame!r}")


def websocket():
    try:
        held = Tunnel("held")
    except OSError as e:
        note("websocket-held", False, str(e))
        return
    i, short_due = 0, time.monotonic() + 5
    while time.monotonic() < DEADLINE:
        try:
            held.echo(i)
            note("websocket-held", True)
        except OSError as e:
            note("websocket-held", False, str(e))
            return
        i += 1
        if time.monotonic() >= short_due:
            short_due += 5
            try:
                short = Tunnel("short")
                for j in range(3):
                    short.echo(j)
                short.close()
                note("websocket-short", True)
            except OSError as e:
                note("websocket-short", False, str(e))
        time.sleep(0.2)
    try:
        held.close()
    except OSError as e:
        note("websocket-held", False, str(e))


def main():
    threads = [threading.Thread(target=small, args=(k,)) for k in range(SMALL_CONNECTIONS)]
    threads += [threading.Thread(target=exports), threading.Thread(target=websocket)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(OUT + ".tmp", "w") as f:
        json.dump(RESULT, f, indent=1, sort_keys=True)
    os.rename(OUT + ".tmp", OUT)


if __name__ == "__main__":
    main()

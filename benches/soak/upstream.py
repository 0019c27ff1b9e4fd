#!/usr/bin/env python3
"""The soak's upstream (benches/soak.sh): one threaded HTTP/1.1 server on loopback.

Usage: upstream.py PORT_FILE

Binds 127.0.0.1:0, writes its port to PORT_FILE, serves until killed. Paths
arrive with the integration's upstream prefix (customs strips the mount):

  /acme/...  the integration that injects `Authorization: Bearer soak-<hex>`;
             any other value (missing, stale format, a caller's key) is a 401.
  /open/...  the anonymous integration: no credential may arrive at all.

Routes: GET */items/N (small JSON), GET /acme/incidents (small export with
personal data), GET /acme/export (about 2 MB of it), GET /acme/dump (24 MiB
streamed as `pass`), POST /acme/incidents/N (answers 422 when personal data
or a dropped field reached it: the request policy failed), GET /acme/ws
(WebSocket echo). Whatever a caller sent that customs must strip (X-Api-Key,
a caller's Authorization on /open) makes the answer a 400, so a leak shows up
as a failed request in the driver. On SIGTERM it prints one JSON line: the
requests served per path kind and the distinct injected tokens seen.
"""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
from gen_json import dump, incident  # noqa: E402  (the load bench's incident shape)
from ws import encode_frame, read_frame  # noqa: E402

TOKEN = re.compile(r"^Bearer soak-[0-9a-f]{32}$")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# What the request policy must never let through (incident-outbound).
LEAKS = [b"4111 1111 1111 1111", b"078-05-1120", b"internal_notes", b"jane@example.com"]

SMALL = dump({"incidents": [incident(i) for i in range(3)]})
EXPORT = dump({"incidents": [incident(i) for i in range(2_000_000 // len(dump(incident(0))))]})
DUMP_CHUNK = (b'{"rows":"' + b"x" * (1 << 20))[: 1 << 20]
DUMP_CHUNKS = 24

LOCK = threading.Lock()
SERVED = {}
TOKENS = set()


def count(kind):
    with LOCK:
        SERVED[kind] = SERVED.get(kind, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def reply(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, status, why):
        count("refused:" + why)
        self.reply(status, json.dumps({"upstream_refused": why}).encode())

    def admitted(self):
        """Checks the credentials that arrived; answers and returns False if wrong."""
        if self.headers.get("X-Api-Key") is not None:
            self.refuse(400, "caller key reached the upstream")
            return False
        auth = self.headers.get_all("Authorization") or []
        if self.path.startswith("/acme/"):
            if len(auth) != 1 or not TOKEN.match(auth[0]):
                self.refuse(401, "bad injected token")
                return False
            with LOCK:
                TOKENS.add(auth[0])
        elif auth:
            self.refuse(400, "authorization on the anonymous integration")
            return False
        return True

    def do_GET(self):
        if not self.admitted():
            return
        path = self.path.split("?", 1)[0]
        if re.fullmatch(r"/(acme|open)/items/[0-9]+", path):
            count("items")
            self.reply(200, json.dumps({"id": int(path.rsplit("/", 1)[1]), "ok": True}).encode())
        elif path == "/acme/incidents":
            count("incidents")
            self.reply(200, SMALL)
        elif path == "/acme/export":
            count("export")
            self.reply(200, EXPORT)
        elif path == "/acme/dump":
            count("dump")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(DUMP_CHUNK) * DUMP_CHUNKS))
            self.end_headers()
            for _ in range(DUMP_CHUNKS):
                self.wfile.write(DUMP_CHUNK)
        elif path == "/acme/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            count("ws")
            self.websocket()
        else:
            self.refuse(404, "unknown path")

    def do_POST(self):
        if not self.admitted():
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not re.fullmatch(r"/acme/incidents/[0-9]+", self.path):
            self.refuse(404, "unknown path")
        elif any(leak in body for leak in LEAKS):
            self.refuse(422, "personal data reached the upstream")
        else:
            count("post")
            self.reply(200, json.dumps({"stored": len(body)}).encode())

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = read_frame(self.rfile)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:  # close: answer it and end
                self.wfile.write(encode_frame(0x8, payload[:2]))
                self.wfile.flush()
                return
            self.wfile.write(encode_frame(opcode, payload))
            self.wfile.flush()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def report(*_):
        with LOCK:
            print(json.dumps({"served": SERVED, "tokens_seen": len(TOKENS)}), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, report)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()

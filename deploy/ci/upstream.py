#!/usr/bin/env python3
"""A stand-in partner API for the deploy checks: answers incidents full of
personal data (for customs to mask), echoes writes, and answers 401 under
/api/denied (so the upstream-credential signal has something to see).
A GET whose path contains "SLOW" touches PORT_FILE.slow, then answers after
a second (an in-flight request for drain tests).
Usage: upstream.py PORT_FILE — binds 127.0.0.1 on a free port and writes it
to PORT_FILE once listening (the readiness signal)."""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INCIDENT = {
    "id": "INC0010003",
    "title": "VPN drops every 10 minutes",
    "description": "Caller Priya Doe (priya.doe@example.com, +1 415 555 0003) "
    "reports: vpn drops. Card 4111 1111 1111 1111 was charged.",
    "customer": {
        "name": "Priya Doe",
        "email": "priya.doe@example.com",
        "phone": "+1 415 555 0003",
        "card_number": "4012888888881881",
        "ssn": "078-05-1120",
    },
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/api/denied"):
            self._send(401, {"error": "bad credential"})
        elif self.path.startswith("/api/incidents"):
            if "SLOW" in self.path:
                open(self.server.port_file + ".slow", "w").close()
                time.sleep(1)
            self._send(200, {"incidents": [INCIDENT]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        received = json.loads(self.rfile.read(length) or b"null")
        self._send(200, {"partner_received": received})

    do_PATCH = do_POST

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.port_file = sys.argv[1]
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes ITSM incident exports shaped like src/demo.rs `export()`.

Usage: gen_json.py OUTDIR NAME=BYTES...  (e.g. 16k=16384). Deterministic.
"""
import json
import sys

FIRST = ["Jane", "Omar", "Li", "Priya", "Lukas", "Amara", "Diego", "Sofia"]
LAST = ["Doe", "Haddad", "Wei", "Raman", "Becker", "Okafor", "Silva", "Rossi"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "3400 000000 00009", "4012888888881881"]
SSNS = ["078-05-1120", "219-09-9999", "457-55-5462", "123-45-6789"]
STATES = ["new", "in_progress", "on_hold", "resolved"]
TOPICS = [
    "VPN drops every 10 minutes",
    "Mailbox full",
    "Laptop will not boot",
    "Payroll export failed",
    "MFA prompt loops",
    "Printer on floor 3 offline",
]


def incident(i):
    """Mirror of demo::incident(i)."""
    first = FIRST[i % len(FIRST)]
    last = LAST[(i // len(FIRST)) % len(LAST)]
    email = f"{first.lower()}.{last.lower()}@example.com"
    phone = f"+1 415 555 {i % 10_000:04}"
    card = CARDS[i % len(CARDS)]
    topic = TOPICS[i % len(TOPICS)]
    return {
        "id": f"INC{10_000 + i:07}",
        "title": topic,
        "description": f"Caller {first} {last} ({email}, {phone}) reports: {topic.lower()}. "
        f"Card {card} was charged for the replacement. "
        f"Ticket opened from 10.20.{i % 250}.{(i * 7) % 250}.",
        "priority": 1 + i % 4,
        "state": STATES[i % len(STATES)],
        "opened_at": f"2026-11-{1 + i % 28:02}T{i % 24:02}:{(i * 13) % 60:02}:00Z",
        "customer": {
            "name": f"{first} {last}",
            "email": email,
            "phone": phone,
            "card_number": card,
            "ssn": SSNS[i % len(SSNS)],
        },
        "assignee": {"name": "Sam Agent", "email": f"agent{i % 17}@corp.example"},
        "internal_notes": "VIP customer; escalate to tier 2 if reopened.",
        "comments": [
            {"author": "caller", "text": f"Still broken. Reach me at {phone}.", "at": "2026-11-20T09:00:00Z"},
            {"author": "desk", "text": "Restarted the gateway; monitoring.", "at": "2026-11-20T09:30:00Z"},
        ],
        "ci": f"vpn-gw-{i % 12:02}",
    }


def dump(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def export(target):
    """As many incidents as fit in `target` bytes (at least one)."""
    items, size = [], len(dump({"incidents": []}))
    while True:
        one = len(dump(incident(len(items)))) + (1 if items else 0)
        if items and size + one > target:
            break
        items.append(incident(len(items)))
        size += one
    return dump({"incidents": items})


def main():
    out = sys.argv[1]
    for arg in sys.argv[2:]:
        name, target = arg.split("=")
        with open(f"{out}/{name}.json", "wb") as f:
            f.write(export(int(target)))


if __name__ == "__main__":
    main()

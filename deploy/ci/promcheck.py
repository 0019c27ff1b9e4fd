#!/usr/bin/env python3
"""Checks the alerts and the dashboard against a real Prometheus that
scrapes a running customs.

Usage: promcheck.py PROM_URL SCRAPE_FILE ALERTS_YAML DASHBOARD_JSON
  - every customs_* name in an alert or a panel query is in the scrape;
  - every panel query parses and returns data (Grafana's variables are
    replaced: $__rate_interval by 1m, the $job and $integration
    multi-selects by .*);
  - every alert expression parses, and Prometheus evaluates every rule
    group with health "ok"."""
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml

NAME = re.compile(r"\bcustoms_[a-z_]+\b")
GRAFANA_VARS = {"$__rate_interval": "1m", "$integration": ".*", "$job": ".*"}


def api(base, path, **params):
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def scraped_names(path):
    names = set()
    for line in open(path):
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def panel_queries(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def alert_rules(alerts):
    for group in alerts["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def grafana(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def main():
    base, scrape, alerts_path, dashboard_path = sys.argv[1:5]
    names = scraped_names(scrape)
    alerts = yaml.safe_load(open(alerts_path))
    dashboard = json.load(open(dashboard_path))
    problems = []
    for where, expr in [*alert_rules(alerts), *panel_queries(dashboard)]:
        for name in NAME.findall(expr):
            if name not in names:
                problems.append(f"{where}: {name} is not in the scrape")
    for alert, expr in alert_rules(alerts):
        reply = api(base, "query", query=expr)
        if reply.get("status") != "success":
            problems.append(f"{alert}: {reply.get('error')}")
    panels = 0
    for title, expr in panel_queries(dashboard):
        reply = api(base, "query", query=grafana(expr))
        panels += 1
        if reply.get("status") != "success":
            problems.append(f"panel {title!r}: {reply.get('error')}")
        elif not reply["data"]["result"]:
            problems.append(f"panel {title!r}: no data for {grafana(expr)}")
    groups = api(base, "rules")["data"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("health") != "ok":
                problems.append(f"rule {rule['name']}: {rule.get('health')} {rule.get('lastError')}")
    if len(groups) != len(alerts["groups"]):
        problems.append(f"Prometheus loaded {len(groups)} rule groups of {len(alerts['groups'])}")
    for p in problems:
        print("  " + p)
    if problems:
        sys.exit(1)
    print(f"prometheus: {sum(1 for _ in alert_rules(alerts))} alerts and {panels} panel queries "
          f"use only scraped metrics; every panel returns data; rules healthy")


if __name__ == "__main__":
    main()

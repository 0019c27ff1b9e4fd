#!/usr/bin/env python3
"""Renders deploy/prometheus/alerts.yaml as a PrometheusRule (stdout).
Stdlib only: the alert groups are embedded verbatim (indented), so the
PrometheusRule holds exactly the rules promtool checks and tests.
With --check, exits 1 when deploy/prometheus/prometheusrule.yaml differs."""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent / "prometheus"
HEADER = """\
# GENERATED from alerts.yaml by deploy/ci/prometheusrule.py: do not edit.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: customs
  labels:
    release: prometheus   # match your Prometheus' ruleSelector
spec:
"""


def render():
    lines = (HERE / "alerts.yaml").read_text().splitlines()
    start = lines.index("groups:")
    body = ["  " + line if line else line for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main():
    text = render()
    if sys.argv[1:] == ["--check"]:
        if (HERE / "prometheusrule.yaml").read_text() != text:
            print("deploy/prometheus/prometheusrule.yaml is stale: run "
                  "python3 deploy/ci/prometheusrule.py > deploy/prometheus/prometheusrule.yaml")
            sys.exit(1)
        return
    sys.stdout.write(text)


if __name__ == "__main__":
    main()

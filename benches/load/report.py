#!/usr/bin/env python3
"""Turns the wrk outputs of benches/load.sh into a markdown report.

Usage: report.py RESULTS_DIR META_FILE
Result files are named r<round>.<size>.<target>.txt; META_FILE holds key=value lines.
"""
import os
import re
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
LABELS = {
    "direct": "direct to upstream",
    "nginx": "nginx reverse proxy",
    "nginx-log": "nginx reverse proxy + JSON access log",
    "hyper-bare": "bare hyper proxy (`examples/bare_proxy.rs`)",
    "customs-pass": "customs `pass`",
    "customs-incident": "customs `incident-inbound`",
    "customs-pass-auth": "customs `pass` + API key",
    "customs-pass-audit-off": "customs `pass`, audit → /dev/null",
    "customs-pass-beside-exports": "customs `pass` beside 2 conns pulling 256 KB exports (incident policy)",
}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = re.search(r"(\d+) requests in", text)
    return {
        "cpu_us": cpu_per_request(path + ".cpu", int(requests.group(1)) if requests else 0),
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(pct.get("50", "")),
        "p99": ms(pct.get("99", "")),
        "errors": (sum(map(int, sock.groups())) if sock else 0)
        + (int(non2xx.group(1)) if non2xx else 0)
        + (0 if rps else 1),
    }


def cpu_per_request(path, requests):
    """CPU µs of the proxy's processes per request (utime + stime over the run)."""
    try:
        fields = dict(kv.split("=") for kv in open(path, encoding="utf-8").read().split())
        return int(fields["ticks"]) / int(fields["clk_tck"]) * 1e6 / requests
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return float("nan")


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def spread(values, fmt):
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += " (" + fmt.format(min(values)) + "–" + fmt.format(max(values)) + ")"
    return text


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def main():
    results, meta_path = sys.argv[1], sys.argv[2]
    meta = dict(
        line.rstrip("\n").split("=", 1) for line in open(meta_path, encoding="utf-8") if "=" in line
    )
    runs = {}  # (size, target) -> {round: stats}
    for name in os.listdir(results):
        m = re.fullmatch(r"r(\d+)\.([^.]+)\.([^.]+)\.txt", name)
        if m:
            runs.setdefault((m.group(2), m.group(3)), {})[int(m.group(1))] = parse(
                os.path.join(results, name)
            )

    def per_round(size, target, other, fn):
        a, b = runs.get((size, target), {}), runs.get((size, other), {})
        return [fn(a[r], b[r]) for r in sorted(a) if r in b]

    def ratio(size, target, other):
        return per_round(size, target, other, lambda x, y: x["rps"] / y["rps"] if y["rps"] else float("nan"))

    def cpu_ratio(size, target, other):
        return per_round(size, target, other, lambda x, y: x["cpu_us"] / y["cpu_us"] if y["cpu_us"] else float("nan"))

    def p99_delta(size, target, other):
        return per_round(size, target, other, lambda x, y: x["p99"] - y["p99"])

    sizes = meta["sizes"].split()
    out = ["### Load benchmark (`benches/load.sh`)", ""]
    out.append(
        f"{meta['date']} · {meta['nproc']} CPUs, {meta['cpu']} · Linux {meta['kernel']} · "
        f"load average before/after: {meta['load_before']} / {meta['load_after']}"
    )
    out.append("")
    out.append(
        f"`wrk -t{meta['threads']} -c{meta['connections']} --latency`, {meta['rounds']} rounds × "
        f"{meta['duration']} s per target and size, round-robin in one run; medians over rounds "
        "(ratios: median of the per-round ratio, min–max in brackets). Upstream: nginx serving "
        f"static incident exports ({meta['file_sizes']}). wrk, upstream and proxy share the CPUs, "
        "so only the ratios mean anything."
    )
    out.append("")
    out.append("| Size | Target | req/s | × nginx | CPU µs/req | p50 ms | p99 ms | p99 − `pass` ms | errors |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        for target in meta[f"targets_{size}"].split():
            rounds = runs.get((size, target), {}).values()
            if not rounds:
                continue
            rps = med([r["rps"] for r in rounds])
            delta = ""
            if target.startswith("customs-") and target != "customs-pass":
                delta = spread(p99_delta(size, target, "customs-pass"), "{:+.2f}")
            out.append(
                f"| {size} | {LABELS.get(target, target)} | {rps:,.0f} | "
                f"{spread(ratio(size, target, 'nginx'), '{:.2f}')} | "
                f"{spread([r['cpu_us'] for r in rounds], '{:.0f}')} | "
                f"{med([r['p50'] for r in rounds]):.2f} | {med([r['p99'] for r in rounds]):.2f} | "
                f"{delta} | {sum(r['errors'] for r in rounds)} |"
            )
    out.append("")

    key = "16k"
    pass_ratio = med(ratio(key, "customs-pass", "nginx"))
    p99_add = med(p99_delta(key, "customs-incident", "customs-pass"))
    auth = med(ratio(key, "customs-pass-auth", "customs-pass"))
    audit = med(ratio(key, "customs-pass", "customs-pass-audit-off"))
    rss = max(int(meta.get("rss_kb_main", "0")), int(meta.get("rss_kb_audit_off", "0"))) * 1024 / 1e6
    out.append("| Target | Measured | Goal | Result |")
    out.append("|---|---:|---:|---|")
    out.append(f"| #3 customs `pass` vs nginx, 16 KB | {pass_ratio:.2f}× | ≥ 0.90× | {verdict(pass_ratio >= 0.9)} |")
    out.append(
        f"| #3 incident policy p99 over `pass`, 16 KB, {meta['connections']} conns | "
        f"{p99_add:+.2f} ms | < 2 ms | {verdict(p99_add < 2.0)} |"
    )
    out.append(f"| #3 customs peak RSS (VmHWM) under load | {rss:.1f} MB | < 100 MB | {verdict(rss < 100)} |")
    logged = ratio(key, "customs-pass", "nginx-log")
    if logged:
        out.append(
            f"| (reference) customs `pass` vs nginx + JSON access log, 16 KB | {med(logged):.2f}× | — | — |"
        )
    beside = p99_delta(key, "customs-pass-beside-exports", "customs-pass")
    if beside:
        out.append(
            f"| (reference) `pass` p99 beside heavy exports over `pass` alone, 16 KB | {med(beside):+.2f} ms | — | — |"
        )
    out.append(
        f"| #4 API-key auth vs anonymous, 16 KB | {auth:.2f}× | no measurable cost (≥ 0.95×) | "
        f"{verdict(auth >= 0.95)} |"
    )
    out.append(
        f"| #5 audit file vs `audit.path: /dev/null`, 16 KB | {audit:.2f}× | ≥ 0.90× | {verdict(audit >= 0.9)} |"
    )
    # Issue 12: CPU per crossing, same-run ratios.
    for size, goal in (("1k", 1.2), ("16k", 1.2)):
        bare = cpu_ratio(size, "customs-pass", "hyper-bare")
        if bare:
            out.append(
                f"| #12 CPU per crossing, customs `pass` vs bare hyper, {size} | {med(bare):.2f}× | ≤ {goal}× | "
                f"{verdict(med(bare) <= goal)} |"
            )
    for size, goal in (("1k", 1.3), ("16k", 2.0)):
        inc = cpu_ratio(size, "customs-incident", "customs-pass")
        if inc:
            out.append(
                f"| #12 CPU per crossing, `incident-inbound` vs `pass`, {size} | {med(inc):.2f}× | ≤ {goal}× | "
                f"{verdict(med(inc) <= goal)} |"
            )
    # Issue 17: a 64 MB `pass` download streamed, against nginx.
    if runs.get(("64m", "customs-pass")) and runs.get(("64m", "nginx")):
        sizes_b = dict(re.findall(r"(\w+) (\d+) B", meta["file_sizes"]))
        body = int(sizes_b.get("64m", "0")) or float("nan")
        per_byte = lambda t: med([r["cpu_us"] for r in runs[("64m", t)].values()]) * 1e3 / body
        big = med(ratio("64m", "customs-pass", "nginx"))
        cpu = med(cpu_ratio("64m", "customs-pass", "nginx"))
        conns = meta.get("big_connections", "?")
        out.append(
            f"| #17 customs `pass` vs nginx req/s, 64 MB download, {conns} conns | {big:.2f}× | ≥ 1.0× | "
            f"{verdict(big >= 1.0)} |"
        )
        out.append(
            f"| #17 CPU per byte, customs `pass` vs nginx, 64 MB ({per_byte('customs-pass'):.2f} vs "
            f"{per_byte('nginx'):.2f} ns/B) | {cpu:.2f}× | ≤ 1.2× | {verdict(cpu <= 1.2)} |"
        )
        customs_mb = int(meta.get("rss_kb_main", "0")) * 1024 / 1e6
        nginx_mb = int(meta.get("rss_kb_nginx", "0")) * 1024 / 1e6
        out.append(
            f"| (reference) peak RSS over the run: customs {customs_mb:.0f} MB, nginx (master + workers) "
            f"{nginx_mb:.0f} MB | — | — | — |"
        )
    out.append("")
    if "abuse_uploads" in meta:
        out.append(
            f"Abuse: {meta['abuse_uploads']} concurrent 9 MiB uploads (3 MB/s each) to a governed "
            f"route: peak RSS {int(meta['abuse_rss_kb_peak']) / 1024:.0f} MiB (idle "
            f"{int(meta['abuse_rss_kb_idle']) / 1024:.0f} MiB; `limits.max_buffered_bytes` 256 MiB); "
            f"answers: {meta['abuse_codes'].strip()} (503: `overloaded`; other codes were "
            "forwarded and answered by the static nginx upstream)."
        )
        out.append("")
    out.append(
        f"Peak RSS: {int(meta.get('rss_kb_main', '0')) / 1024:.1f} MiB (customs with the three "
        f"integrations, audit to a file), {int(meta.get('rss_kb_audit_off', '0')) / 1024:.1f} MiB "
        "(audit to /dev/null, which still seals every record but never rotates or fsyncs). "
        f"Audit records written: {meta.get('audit_bytes', '?')} bytes."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()

//! Policy throughput on a realistic ~256 KB ITSM incident export, against a
//! plain serde_json parse + serialise of the same bytes, in the same run.
//!
//! `cargo bench --bench policy_apply` prints criterion's figures, then a
//! summary with MB/s and the ratio of each policy to the baseline (median of
//! interleaved rounds, so drift on a shared machine hits both sides alike).

use criterion::{Criterion, Throughput, criterion_group};

/// The same allocator as the `customs` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use customs::json::Bounds;
use customs::policy::document::{Choice, Format, apply_bytes_with};
use customs::policy::transform::HashKey;
use customs::policy::{Apply, Policy, load_file};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const TARGET_BYTES: usize = 256 * 1024;

fn payload() -> Vec<u8> {
    serde_json::to_vec(&customs::demo::export(TARGET_BYTES)).expect("serialise export")
}

fn policy(name: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(format!("{name}.yaml"));
    load_file(&path).unwrap_or_else(|d| panic!("{name}: {d:?}"))
}

fn baseline(bytes: &[u8]) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("parse");
    serde_json::to_vec(&v).expect("serialise")
}

fn run_policy(p: &Policy, bytes: &[u8], key: &HashKey) -> Vec<u8> {
    run_on(p, bytes, key, Choice::Auto)
}

/// `Choice::Auto` is what `serve` runs (the stream engine for these policies); `Choice::Tree`
/// is the reference engine, timed beside it.
fn run_on(p: &Policy, bytes: &[u8], key: &HashKey, choice: Choice) -> Vec<u8> {
    let how = Apply {
        hash_key: Some(key),
        report: false,
    };
    apply_bytes_with(p, bytes, Format::Json, Bounds::depth(64), &how, choice)
        .expect("apply")
        .bytes
}

fn bench(c: &mut Criterion) {
    let bytes = payload();
    let key = HashKey::new(b"bench-key");
    let outbound = policy("incident-outbound");
    let inbound = policy("incident-inbound");
    let mut g = c.benchmark_group("incident_export_256k");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("serde_parse_serialise", |b| {
        b.iter(|| baseline(black_box(&bytes)))
    });
    g.bench_function("strict_parse_serialise", |b| {
        b.iter(|| {
            let v = customs::json::parse_strict(black_box(&bytes), 64).expect("parse");
            serde_json::to_vec(&v).expect("serialise")
        })
    });
    g.bench_function("policy_incident_outbound", |b| {
        b.iter(|| run_policy(&outbound, black_box(&bytes), &key))
    });
    g.bench_function("policy_incident_inbound", |b| {
        b.iter(|| run_policy(&inbound, black_box(&bytes), &key))
    });
    g.finish();
}

/// The time `f` takes: the CPU time of this thread, so that a run preempted on a busy
/// machine does not count the time it waited.
fn time_once(f: &mut dyn FnMut()) -> Duration {
    let start = thread_cpu();
    f();
    thread_cpu().saturating_sub(start)
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.unsigned_abs(),
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn summary() {
    let bytes = payload();
    let key = HashKey::new(b"bench-key");
    let outbound = policy("incident-outbound");
    let inbound = policy("incident-inbound");
    let mut base = Vec::new();
    let mut out = Vec::new();
    let mut inb = Vec::new();
    let mut out_tree = Vec::new();
    let mut inb_tree = Vec::new();
    for _ in 0..60 {
        base.push(time_once(&mut || drop(black_box(baseline(&bytes)))));
        out.push(time_once(&mut || {
            drop(black_box(run_policy(&outbound, &bytes, &key)))
        }));
        inb.push(time_once(&mut || {
            drop(black_box(run_policy(&inbound, &bytes, &key)))
        }));
        out_tree.push(time_once(&mut || {
            drop(black_box(run_on(&outbound, &bytes, &key, Choice::Tree)))
        }));
        inb_tree.push(time_once(&mut || {
            drop(black_box(run_on(&inbound, &bytes, &key, Choice::Tree)))
        }));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (b, o, i) = (median(&mut base), median(&mut out), median(&mut inb));
    let (ot, it) = (median(&mut out_tree), median(&mut inb_tree));
    let mbs = |d: Duration| bytes.len() as f64 / d.as_secs_f64() / 1e6;
    println!(
        "\nsummary: {} byte incident export, median CPU time of 60 interleaved rounds",
        bytes.len()
    );
    println!(
        "  serde parse+serialise   {:>8.2?}  {:>7.1} MB/s  1.00x",
        b,
        mbs(b)
    );
    println!(
        "  incident-outbound       {:>8.2?}  {:>7.1} MB/s  {:.2}x",
        o,
        mbs(o),
        o.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "  incident-inbound        {:>8.2?}  {:>7.1} MB/s  {:.2}x",
        i,
        mbs(i),
        i.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "  outbound, tree engine   {:>8.2?}  {:>7.1} MB/s  {:.2}x",
        ot,
        mbs(ot),
        ot.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "  inbound, tree engine    {:>8.2?}  {:>7.1} MB/s  {:.2}x",
        it,
        mbs(it),
        it.as_secs_f64() / b.as_secs_f64()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().final_summary();
    summary();
}

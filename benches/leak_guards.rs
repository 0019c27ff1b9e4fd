//! The per-crossing cost of the leak guards of issue 11: the credential-echo
//! scan of an answer and the sanitising of a recorded URL and field paths.
//!
//! `cargo bench --bench leak_guards`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use customs::audit::redact;
use customs::proxy::echo::Echo;
use http::HeaderValue;
use std::hint::black_box;

/// The same allocator as the `customs` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn guards(c: &mut Criterion) {
    let export = serde_json::to_vec(&customs::demo::export(256 * 1024)).expect("serialise");
    let value = HeaderValue::from_static("Bearer tok/Zq9+Vx7wK3mNp2=Aa81kdPq0");
    let echo = Echo::new(&value).expect("a token");
    let mut g = c.benchmark_group("echo");
    g.throughput(Throughput::Bytes(export.len() as u64));
    g.bench_function("scan 256 KiB export", |b| {
        b.iter(|| black_box(echo.found_in(black_box(&export))))
    });
    // JSON with escapes in it takes the second look (escapes decoded).
    let mut escaped = export.clone();
    escaped.extend_from_slice(br#" "a\/b""#);
    g.bench_function("scan 256 KiB export with escapes", |b| {
        b.iter(|| black_box(echo.found_in(black_box(&escaped))))
    });
    g.finish();
    c.bench_function("echo guard setup", |b| {
        b.iter(|| black_box(Echo::new(black_box(&value))))
    });
    c.bench_function("redact url", |b| {
        b.iter(|| {
            black_box(redact::url(black_box(
                "/acme/api/v2/incidents/INC0010003/comments?page=2&limit=50",
            )))
        })
    });
    let paths: Vec<String> = (0..32)
        .map(|i| format!("$['incidents'][*]['customer']['field_{i}']"))
        .collect();
    c.bench_function("redact 32 field paths", |b| {
        b.iter(|| black_box(redact::field_paths(black_box(&paths))))
    });
}

criterion_group!(benches, guards);
criterion_main!(benches);

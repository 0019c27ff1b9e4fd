//! Both policy engines on arbitrary bytes (issue 12 item 3).
//!
//! Invariant: the tree engine, `Choice::Auto` and the stream engine's own `stream::run` give
//! the same verdict, the same output bytes and the same outcome, for JSON and NDJSON, under
//! each of a few fixed policies (the input's length picks one, so seeds stay plain files).
#![no_main]

use customs::json::Bounds;
use customs::policy::document::Format;
use customs_fuzz::diff;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (policy, how) = customs_fuzz::engine_case(data, data.len() % 3 == 0);
    // Lengths divisible by seven run under a tight budget, where refusals must agree too.
    let bounds = if data.len() % 7 == 0 {
        Bounds {
            depth: 4,
            elements: 24,
        }
    } else {
        customs_fuzz::BOUNDS
    };
    for format in [Format::Json, Format::Ndjson] {
        if let Err(disagreement) = diff::compare(policy, data, format, bounds, &how) {
            panic!("{} ({format:?}): {disagreement}", policy.name);
        }
    }
});

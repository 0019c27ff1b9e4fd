//! The stream engine on arbitrary bytes (issue 12 item 3).
//!
//! Invariants: nothing panics; `stream::run` answers only for bodies the strict parser
//! accepts, its answer is strict JSON (NDJSON: every line), and a blocked crossing carries no
//! bytes. The input's length picks the policy.
#![no_main]

use customs::json;
use customs::policy::document::Format;
use customs::policy::stream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (policy, how) = customs_fuzz::engine_case(data, false);
    let bounds = customs_fuzz::BOUNDS;
    for format in [Format::Json, Format::Ndjson] {
        let Ok(applied) = stream::run(policy, data, format, bounds, &how) else {
            continue;
        };
        // A `replace` may nest deeper than the input: read the output at the parser's limit.
        let roomy = json::Bounds::depth(json::MAX_DEPTH);
        let (input_ok, output_ok) = match format {
            Format::Json => (
                json::parse_bounded(data, bounds).is_ok(),
                json::parse_bounded(&applied.bytes, roomy).is_ok(),
            ),
            Format::Ndjson => (
                json::parse_ndjson(data, bounds).is_ok(),
                json::parse_ndjson(&applied.bytes, roomy).is_ok(),
            ),
        };
        assert!(
            input_ok,
            "the stream engine answered for a body the parser refuses"
        );
        if applied.outcome.blocks(policy) {
            assert!(applied.bytes.is_empty(), "a blocked crossing carries bytes");
        } else {
            assert!(
                output_ok,
                "the stream engine's output is not strict {format:?}"
            );
        }
    }
});

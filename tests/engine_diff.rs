//! The two policy engines prove each other (issue 12 item 3): generated documents under
//! generated policies, compiled from YAML by the real loader, must get the same verdict, the
//! same output bytes and the same outcome (counts, unknown fields, refusal) from the tree
//! engine and from the stream engine, for JSON and NDJSON, written canonically and with noise.
//!
//! `PROPTEST_CASES` raises the case count (default [`DEFAULT_CASES`], a few seconds in debug).

mod arb;
mod diff;

use arb::policy::GenPolicy;
use arb::{Mutation, Node, Style};
use customs::json::{Bounds, DEFAULT_MAX_ELEMENTS, MAX_DEPTH};
use customs::policy::document::Format;
use customs::policy::transform::HashKey;
use customs::policy::{Apply, TEST_HASH_KEY, compile};
use diff::{Agreed, MIN_STREAM_SHARE};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

const DEFAULT_CASES: u32 = 256;

/// One generated crossing.
#[derive(Debug, Clone)]
struct Case {
    policy: GenPolicy,
    format: Format,
    /// One document for JSON, one per line for NDJSON.
    docs: Vec<Node>,
    /// `None`: canonical bytes; a seed: whitespace and escapes.
    noise: Option<u64>,
    /// NDJSON line ends and blank lines.
    crlf: bool,
    blank_line: bool,
    final_newline: bool,
    mutation: Option<Mutation>,
    bounds: Bounds,
    /// Run with the hash key (a policy that hashes without one must fail in both engines).
    key: bool,
    report: bool,
}

impl Case {
    fn bytes(&self) -> Vec<u8> {
        let style = Style {
            noise: self.noise,
            one_line: self.format == Format::Ndjson,
        };
        let mut out = match self.format {
            Format::Json => self.docs[0].write(style),
            Format::Ndjson => self.ndjson(style),
        };
        if let Some(m) = self.mutation {
            m.apply(&mut out);
        }
        out
    }

    fn ndjson(&self, style: Style) -> Vec<u8> {
        let end: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        for (i, doc) in self.docs.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(end);
                if self.blank_line {
                    out.extend_from_slice(b" \t");
                    out.extend_from_slice(end);
                }
            }
            out.extend(doc.write(style));
        }
        if self.final_newline {
            out.extend_from_slice(end);
        }
        out
    }
}

fn bounds() -> impl Strategy<Value = Bounds> {
    let depth = prop_oneof![12 => Just(MAX_DEPTH), 1 => 2usize..6];
    let elements = prop_oneof![12 => Just(DEFAULT_MAX_ELEMENTS), 1 => 3usize..40];
    (depth, elements).prop_map(|(depth, elements)| Bounds { depth, elements })
}

fn case() -> impl Strategy<Value = Case> {
    let format = prop_oneof![3 => Just(Format::Json), 1 => Just(Format::Ndjson)];
    let docs = format.prop_flat_map(|format| {
        let n = if format == Format::Json { 1..2 } else { 1..4 };
        (Just(format), prop::collection::vec(arb::document(), n))
    });
    (
        arb::policy::policy(),
        docs,
        prop::option::weighted(0.5, any::<u64>()),
        any::<[bool; 3]>(),
        arb::mutation(),
        bounds(),
        prop::bool::weighted(0.95),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(
                policy,
                (format, docs),
                noise,
                [crlf, blank_line, final_newline],
                mutation,
                bounds,
                key,
                report,
            )| Case {
                policy,
                format,
                docs,
                noise,
                crlf,
                blank_line,
                final_newline,
                mutation,
                bounds,
                key,
                report,
            },
        )
}

/// How the cases fell out, printed after the run.
#[derive(Debug, Default)]
struct Tally {
    cases: u32,
    accepted: u32,
    /// Accepted and something was dropped, masked, replaced, hashed, redacted or unknown.
    acted: u32,
    /// Accepted with a refusal (blocked in enforce mode, recorded in monitor mode).
    refused: u32,
    invalid: u32,
    not_run: u32,
    streamed: u32,
    /// Cases the stream engine is meant to answer (see [`MIN_STREAM_SHARE`]).
    eligible: u32,
    eligible_streamed: u32,
    /// Why the stream engine left eligible cases to the tree engine, with counts.
    left: BTreeMap<&'static str, u32>,
}

impl Tally {
    fn add(&mut self, case: &Case, agreed: &Agreed) {
        self.cases += 1;
        let (left, acted, refused) = match agreed {
            Agreed::Accepted {
                left,
                acted,
                refused,
            } => (*left, *acted, *refused),
            Agreed::Invalid => return self.invalid += 1,
            Agreed::NotRun => return self.not_run += 1,
        };
        self.accepted += 1;
        self.acted += u32::from(acted);
        self.refused += u32::from(refused);
        self.streamed += u32::from(left.is_none());
        let p = &case.policy;
        if refused || case.report || p.monitor || p.filters || p.negative {
            return;
        }
        self.eligible += 1;
        match left {
            None => self.eligible_streamed += 1,
            Some(why) => *self.left.entry(why).or_default() += 1,
        }
    }

    fn share(&self) -> f64 {
        f64::from(self.eligible_streamed) / f64::from(self.eligible.max(1))
    }
}

fn check(case: &Case, tally: &RefCell<Tally>) -> Result<(), TestCaseError> {
    let policy = compile(Path::new("gen.yaml"), &case.policy.yaml).map_err(|d| {
        TestCaseError::fail(format!(
            "generated policy does not compile: {d:?}\n{}",
            case.policy.yaml
        ))
    })?;
    let key = HashKey::new(TEST_HASH_KEY);
    let how = Apply {
        hash_key: case.key.then_some(&key),
        report: case.report,
    };
    let bytes = case.bytes();
    let agreed = diff::compare(&policy, &bytes, case.format, case.bounds, &how).map_err(|e| {
        TestCaseError::fail(format!(
            "{e}  format: {:?}, bounds: {:?}, report: {}\n  policy:\n{}",
            case.format, case.bounds, case.report, case.policy.yaml
        ))
    })?;
    tally.borrow_mut().add(case, &agreed);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn engines_agree_on_generated_policies_and_documents() {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&case(), |case| check(&case, &tally)) {
        panic!("the engines disagree: {e}");
    }
    let t = tally.into_inner();
    eprintln!(
        "engine_diff: {} cases: {} accepted ({} acted on, {} with a refusal, {} answered by the \
         stream engine), {} refused as invalid, {} not run",
        t.cases, t.accepted, t.acted, t.refused, t.streamed, t.invalid, t.not_run
    );
    eprintln!(
        "engine_diff: the stream engine answered {} of {} eligible cases ({:.0}%); it left the \
         others to the tree engine because: {:?}",
        t.eligible_streamed,
        t.eligible,
        100.0 * t.share(),
        t.left
    );
    assert!(
        t.accepted > t.cases / 3,
        "too few accepted cases to prove much: {t:?}"
    );
    assert!(
        t.share() >= MIN_STREAM_SHARE,
        "the stream engine answered {:.0}% of the eligible cases, want ≥ {:.0}%: {t:?}",
        100.0 * t.share(),
        100.0 * MIN_STREAM_SHARE
    );
}

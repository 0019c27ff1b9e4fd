use super::*;
use std::borrow::Cow;

fn redactor(builtins: &[Detector]) -> Redactor {
    Redactor::new(builtins, &[]).expect("built-in detectors compile")
}

/// The redacted text, or the input when nothing was found.
fn apply(r: &Redactor, s: &str) -> String {
    r.redact(s).map_or_else(|| s.to_owned(), |x| x.text)
}

/// True positives with only `d` enabled, and again with every detector.
fn check_found(d: Detector, cases: &[(&str, &str)]) {
    let one = redactor(&[d]);
    let all = redactor(&Detector::ALL);
    for &(input, want) in cases {
        assert_eq!(apply(&one, input), want, "{} on {input:?}", d.name());
        assert_eq!(apply(&all, input), want, "all detectors on {input:?}");
    }
}

/// False positives: with only `d` enabled nothing is found.
fn check_kept(d: Detector, cases: &[&str]) {
    let one = redactor(&[d]);
    for &input in cases {
        assert_eq!(one.redact(input), None, "{} must keep {input:?}", d.name());
    }
}

#[test]
fn email_table() {
    check_found(
        Detector::Email,
        &[
            ("alice@example.com", "[EMAIL]"),
            ("mail Canary+T1@Example.COM now", "mail [EMAIL] now"),
            ("<bob.smith@mail.example.co.uk>", "<[EMAIL]>"),
            ("сanary@example.com", "[EMAIL]"),
            ("canary@exämple.de", "[EMAIL]"),
            ("o'brien@example.ie", "[EMAIL]"),
            ("'alice@example.com'", "'[EMAIL]'"),
            ("write to alice@example.com.", "write to [EMAIL]."),
            ("root@10.0.0.1", "[EMAIL]"),
            ("mailto:a_b-c@sub-domain.example.org?x", "mailto:[EMAIL]?x"),
        ],
    );
    check_kept(
        Detector::Email,
        &[
            "@handle",
            "a @ b.com",
            "user@localhost",
            "foo@bar",
            "x@y.1",
            "10@3.5",
            "support at example dot com",
            "no at sign here.com",
        ],
    );
}

#[test]
fn credit_card_table() {
    check_found(
        Detector::CreditCard,
        &[
            ("4111111111111111", "[CREDIT_CARD]"),
            ("4111-1111-1111-1111", "[CREDIT_CARD]"),
            ("4111 1111 1111 1111", "[CREDIT_CARD]"),
            ("4111.1111.1111.1111", "[CREDIT_CARD]"),
            ("4111\t1111\t1111\t1111", "[CREDIT_CARD]"),
            ("4111\n1111\n1111\n1111", "[CREDIT_CARD]"),
            ("4111\r\n1111\r\n1111\r\n1111", "[CREDIT_CARD]"),
            ("card 4111_1111_1111_1111.", "card [CREDIT_CARD]."),
            ("4111·1111·1111·1111", "[CREDIT_CARD]"),
            ("2026 4111 1111 1111 1111", "2026 [CREDIT_CARD]"),
            ("http://x/1 4111 1111 1111 1111", "http://x/1 [CREDIT_CARD]"),
            ("amex 378282246310005 ok", "amex [CREDIT_CARD] ok"),
            ("3782 822463 10005", "[CREDIT_CARD]"),
            ("5555555555554444", "[CREDIT_CARD]"),
            ("6011111111111117", "[CREDIT_CARD]"),
            ("visa13 4222222222222", "visa13 [CREDIT_CARD]"),
            (
                "card: 4111 - 1111 - 1111 - 1111 exp",
                "card: [CREDIT_CARD] exp",
            ),
            ("paid 4111111111111111.", "paid [CREDIT_CARD]."),
            (
                "4111111111111111 and 5555 5555 5555 4444",
                "[CREDIT_CARD] and [CREDIT_CARD]",
            ),
            ("2026-11-26 4111111111111111", "2026-11-26 [CREDIT_CARD]"),
        ],
    );
    check_kept(
        Detector::CreditCard,
        &[
            "4111111111111112",
            "1234567890123456",
            "2026-11-26T08:19:58Z",
            "ORD-20261126-0042",
            "0.4111111111111111",
            "3.14159265358979",
            "41111111111111111111",
            "2026-11-26 2026-11-27",
            "9999999999999995",
            "1764145198123",
            "+1 555 123 4567",
            "411111111111",
            "4111/1111/1111/1111",
        ],
    );
}

#[test]
fn iban_table() {
    check_found(
        Detector::Iban,
        &[
            ("DE89370400440532013000", "[IBAN]"),
            ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
            ("de89 3704 0044 0532 0130 00", "[IBAN]"),
            ("GB82 WEST 1234 5698 7654 32", "[IBAN]"),
            ("IBAN: FR1420041010050500013M02606.", "IBAN: [IBAN]."),
            ("DE89370400440532013000 1234", "[IBAN] 1234"),
            ("AB12 DE89 3704 0044 0532 0130 00", "AB12 [IBAN]"),
            ("NO9386011117947 end", "[IBAN] end"),
        ],
    );
    check_kept(
        Detector::Iban,
        &[
            "DE89370400440532013001",
            "XX89370400440532013000",
            "ab12cdef34567890abcdef",
            "sha de12abcdef0123456789abcdef",
            "ORD-20261126-0042",
            "AB1234567890123456",
        ],
    );
}

#[test]
fn us_ssn_table() {
    check_found(
        Detector::UsSsn,
        &[
            ("078-05-1120", "[US_SSN]"),
            ("SSN 078 05 1120", "SSN [US_SSN]"),
            ("078.05.1120", "[US_SSN]"),
            ("ssn:078-05-1120;", "ssn:[US_SSN];"),
            ("id 123-45-6789.", "id [US_SSN]."),
            ("899-99-9999", "[US_SSN]"),
            ("5 3 6 - 2 2 - 1 2 3 4", "[US_SSN]"),
            ("ssn 5 3 6-2 2-1 2 3 4!", "ssn [US_SSN]!"),
            ("5 3 6 2 2 1 2 3 4", "[US_SSN]"),
        ],
    );
    check_kept(
        Detector::UsSsn,
        &[
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "1078-05-1120",
            "078-05-11201",
            "2026-078-05-1120",
            "078-05-1120-7",
            "078051120",
            "078-05 1120",
            "1 5 3 6 - 2 2 - 1 2 3 4",
            "5 3 6 - 2 2 - 1 2 3 4 5",
            "0 0 0 - 2 2 - 1 2 3 4",
            "ORD-20261126-0042",
            "2026-11-26T08:19:58Z",
        ],
    );
}

#[test]
fn phone_table() {
    check_found(
        Detector::Phone,
        &[
            ("+14155552671", "[PHONE]"),
            ("+1 415 555 2671", "[PHONE]"),
            ("+44 20 7946 0958", "[PHONE]"),
            ("tel:+49 30 901820.", "tel:[PHONE]."),
            ("(555) 123-4567", "[PHONE]"),
            ("555-123-4567", "[PHONE]"),
            ("555.123.4567", "[PHONE]"),
            ("call 555 123 4567 now", "call [PHONE] now"),
            ("call 1-555-123-4567 now", "call [PHONE] now"),
            ("+1 (555) 123-4567", "[PHONE]"),
            ("ring +44 20 7946 0958, or not", "ring [PHONE], or not"),
        ],
    );
    check_kept(
        Detector::Phone,
        &[
            "2026-11-26T08:19:58Z",
            "2026-11-26T08:19:58+01:00",
            "ORD-20261126-0042",
            "1234567890",
            "order 1234567890 shipped",
            "+0100 2026-11-26",
            "+1234567",
            "v1+2345678901",
            "12-555-123-4567",
            "555-123-45678",
            "555-123 4567",
            "1.2.3.4",
        ],
    );
}

#[test]
fn ipv4_table() {
    check_found(
        Detector::Ipv4,
        &[
            ("10.0.0.1", "[IPV4]"),
            ("host 192.168.1.254:8080", "host [IPV4]:8080"),
            ("ip=255.255.255.255", "ip=[IPV4]"),
            ("from 8.8.8.8.", "from [IPV4]."),
            ("[127.0.0.1]", "[[IPV4]]"),
            ("010.001.000.001", "[IPV4]"),
        ],
    );
    check_kept(
        Detector::Ipv4,
        &[
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "v1.2.3.4",
            "10.0.0.1234",
            "2026.11.26",
            "version 1.2.3",
            "192.168.1",
            "1234.1.2.3",
        ],
    );
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.\
                   dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

#[test]
fn jwt_table() {
    let bearer = format!("Bearer {JWT}");
    let dotted = format!("token {JWT}.");
    check_found(
        Detector::Jwt,
        &[
            (JWT, "[JWT]"),
            (&bearer, "Bearer [JWT]"),
            (&dotted, "token [JWT]."),
            ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[JWT]"),
        ],
    );
    check_kept(
        Detector::Jwt,
        &[
            "eyJhbGciOiJIUzI1NiJ9",
            "eyes.open.wide",
            "eyJ.x.y",
            "header eyJhbGciOiJIUzI1NiJ9 only",
        ],
    );
}

#[test]
fn aws_access_key_table() {
    check_found(
        Detector::AwsAccessKey,
        &[
            ("AKIAIOSFODNN7EXAMPLE", "[AWS_ACCESS_KEY]"),
            ("key=ASIAY34FZKBOKMUTVV7A;", "key=[AWS_ACCESS_KEY];"),
            ("aws AKIAIOSFODNN7EXAMPLE.", "aws [AWS_ACCESS_KEY]."),
        ],
    );
    check_kept(
        Detector::AwsAccessKey,
        &[
            "AKIAIOSFODNN7EXAMPL",
            "XAKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLEX",
            "ASIAPACIFICREGION",
            "akiaiosfodnn7example",
        ],
    );
}

#[test]
fn private_key_table() {
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc=\n-----END RSA PRIVATE KEY-----";
    let around = format!("key:\n{pem}\nthanks");
    let two = format!("{pem} and {pem}");
    let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxcLYBF\n-----END PGP PRIVATE KEY BLOCK-----";
    check_found(
        Detector::PrivateKey,
        &[
            (pem, "[PRIVATE_KEY]"),
            (&around, "key:\n[PRIVATE_KEY]\nthanks"),
            (&two, "[PRIVATE_KEY] and [PRIVATE_KEY]"),
            (
                "x -----BEGIN PRIVATE KEY-----\nMIIE truncated",
                "x [PRIVATE_KEY]",
            ),
            (pgp, "[PRIVATE_KEY]"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
                "[PRIVATE_KEY]",
            ),
        ],
    );
    check_kept(
        Detector::PrivateKey,
        &[
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            "----- section -----",
        ],
    );
}

#[test]
fn evasions_are_seen_through() {
    let all = redactor(&Detector::ALL);
    let cases = [
        ("４１１１１１１１１１１１１１１１", "[CREDIT_CARD]"),
        ("٤١١١١١١١١١١١١١١١", "[CREDIT_CARD]"),
        ("4111\u{a0}1111\u{a0}1111\u{a0}1111", "[CREDIT_CARD]"),
        ("4111\u{ad}1111\u{200c}1111\u{2060}1111", "[CREDIT_CARD]"),
        ("4\u{301}111111111111111", "[CREDIT_CARD]"),
        ("١٢٣-٤٥-٦٧٨٩", "[US_SSN]"),
        ("１２３-４５-６７８９", "[US_SSN]"),
        ("٠٧٨-٠٥-١١٢٠", "[US_SSN]"),
        ("078\u{2010}05\u{2010}1120", "[US_SSN]"),
        ("078\u{2013}05\u{2013}1120", "[US_SSN]"),
        ("078\u{2212}05\u{2212}1120", "[US_SSN]"),
        ("078-05\u{200b}-1120", "[US_SSN]"),
        ("078%2D05%2D1120", "[US_SSN]"),
        ("078%2d05%2d1120", "[US_SSN]"),
        ("bob＠test.org", "[EMAIL]"),
        ("bob\u{fe6b}test.org", "[EMAIL]"),
        ("alice@\u{200b}example.com", "[EMAIL]"),
        ("alice%40example.com", "[EMAIL]"),
        ("bob%EF%BC%A0test.org", "[EMAIL]"),
        ("alice\\u0040example.com", "[EMAIL]"),
        ("alice@example\u{3002}com", "[EMAIL]"),
        ("AKIA\u{feff}IOSFODNN7EXAMPLE", "[AWS_ACCESS_KEY]"),
        (
            "ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ",
            "[AWS_ACCESS_KEY]",
        ),
        ("ｄｅ89 3704 0044 0532 0130 00", "[IBAN]"),
        ("+44\u{2009}20\u{2009}7946\u{2009}0958", "[PHONE]"),
        ("10\u{ff0e}0\u{ff0e}0\u{ff0e}1", "[IPV4]"),
        (
            "\u{2014}\u{2014}\u{2014}\u{2014}\u{2014}BEGIN EC PRIVATE KEY-----\nx",
            "[PRIVATE_KEY]",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(apply(&all, input), want, "on {input:?}");
    }
}

#[test]
fn text_outside_spans_is_untouched() {
    let all = redactor(&Detector::ALL);
    let cases = [
        (
            "x\u{200b}4111111111111111\u{200b}y",
            "x\u{200b}[CREDIT_CARD]\u{200b}y",
        ),
        (
            "Grüße ☕ 4111111111111111 ende",
            "Grüße ☕ [CREDIT_CARD] ende",
        ),
        ("ｘ％ 4111111111111111 ｙ", "ｘ％ [CREDIT_CARD] ｙ"),
        (
            "100% sure: alice%40example.com %zz",
            "100% sure: [EMAIL] %zz",
        ),
        ("a%20b 078-05-1120", "a%20b [US_SSN]"),
        ("ssn ０７８－０５－１１２０ ok", "ssn [US_SSN] ok"),
    ];
    for (input, want) in cases {
        assert_eq!(apply(&all, input), want, "on {input:?}");
    }
}

#[test]
fn ordinary_strings_are_kept_by_all_detectors() {
    let all = redactor(&Detector::ALL);
    let cases = [
        "",
        "hello world",
        "2026-11-26T08:19:58Z",
        "2026-11-26T08:19:58.123456+01:00",
        "ORD-20261126-0042",
        "1234567890",
        "1764145198",
        "order 1234567890123 shipped",
        "version 1.2.3",
        "price 1,234.56 EUR",
        "Grüße aus Köln",
        "100% done",
        "see https://example.com/a%20b?q=1",
        "uuid 3f2b8c1e-7d4a-4e2b-9c1f-0a1b2c3d4e5f",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Ticket #4521 reopened",
        "--- a/file\n+++ b/file",
    ];
    for input in cases {
        assert_eq!(all.redact(input), None, "must keep {input:?}");
    }
}

#[test]
fn overlapping_spans_are_merged() {
    let all = redactor(&Detector::ALL);
    assert_eq!(apply(&all, "4111111111111111@example.com"), "[EMAIL]");
    assert_eq!(apply(&all, "user@10.0.0.1"), "[EMAIL]");
    let both = all.redact("a@b.co and 078-05-1120").expect("two spans");
    assert_eq!(
        both,
        Redacted {
            text: "[EMAIL] and [US_SSN]".into(),
            count: 2
        }
    );
    let merged = merge(vec![
        Span {
            range: 5..15,
            entry: 1,
        },
        Span {
            range: 0..10,
            entry: 0,
        },
        Span {
            range: 0..3,
            entry: 2,
        },
        Span {
            range: 20..25,
            entry: 3,
        },
        Span {
            range: 25..26,
            entry: 4,
        },
    ]);
    assert_eq!(
        merged,
        vec![
            Span {
                range: 0..15,
                entry: 0
            },
            Span {
                range: 20..25,
                entry: 3
            },
            Span {
                range: 25..26,
                entry: 4
            },
        ]
    );
}

#[test]
fn only_enabled_detectors_run() {
    let email = redactor(&[Detector::Email]);
    assert_eq!(apply(&email, "a@b.co 078-05-1120"), "[EMAIL] 078-05-1120");
    let none = redactor(&[]);
    assert_eq!(none.redact("a@b.co 078-05-1120"), None);
    let twice = redactor(&[Detector::Email, Detector::Email]);
    assert_eq!(twice.redact("a@b.co").map(|r| r.count), Some(1));
}

fn custom(patterns: &[(&str, &str)]) -> Result<Redactor, DetectError> {
    let owned: Vec<(String, String)> = patterns
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    Redactor::new(&[Detector::Email], &owned)
}

#[test]
fn custom_patterns_redact_with_their_label() {
    let r = custom(&[("ticket-secret", "SECRET-[0-9]{6}")]).expect("compiles");
    assert_eq!(apply(&r, "x SECRET-123456 y"), "x [TICKET-SECRET] y");
    assert_eq!(apply(&r, "SECRET-１２３４５６"), "[TICKET-SECRET]");
    assert_eq!(
        apply(&r, "SECRET%2D123456 a@b.co"),
        "[TICKET-SECRET] [EMAIL]"
    );
    assert_eq!(r.redact("SECRET-12345"), None);
}

#[test]
fn bad_custom_patterns_are_explained() {
    let cases = [
        ("open", "(abc", "invalid regex"),
        ("star", "a*", "empty string"),
        ("nothing", "", "empty string"),
        ("boundary", r"\b", "empty string"),
        ("optional", "(?:SECRET)?", "empty string"),
        ("line", "(?m)^$", "empty string"),
        ("nested-empty", "(?:){64}{64}{64}", "empty string"),
        ("huge", "a{1000}{1000}", "KiB"),
        ("huge-unicode", r"\w{1000}{100}", "KiB"),
        ("lookahead", "a(?=b)", "look-around"),
    ];
    for (name, pattern, why) in cases {
        let err = custom(&[(name, pattern)]).expect_err(pattern);
        let msg = err.to_string();
        assert!(matches!(err, DetectError::BadPattern { .. }), "{msg}");
        assert!(msg.contains(&format!("'{name}'")), "{msg}");
        assert!(msg.contains(why), "{pattern}: {msg}");
    }
}

#[test]
fn bad_custom_names_are_refused() {
    for name in ["", "  ", "a]b", "x\ny"] {
        let err = custom(&[(name, "X[0-9]+")]).expect_err(name);
        assert!(matches!(err, DetectError::BadName { .. }), "{err}");
    }
}

#[test]
fn names_labels_and_lookup_round_trip() {
    for d in Detector::ALL {
        assert_eq!(Detector::from_name(d.name()), Some(d));
        assert_eq!(d.label(), d.name().to_uppercase());
    }
    assert_eq!(Detector::from_name("EMAIL"), Some(Detector::Email));
    assert_eq!(Detector::from_name("e-mail"), None);
}

#[test]
fn redactor_is_shareable() {
    fn assert_traits<T: Send + Sync + std::fmt::Debug>() {}
    assert_traits::<Redactor>();
    assert_traits::<DetectError>();
}

#[test]
fn plain_ascii_is_not_copied() {
    for s in ["plain 123", "100% sure %zz %4", "C:\\users\\x \\u12", ""] {
        let n = Norm::new(s);
        assert!(matches!(n.text, Cow::Borrowed(_)), "{s:?}");
        assert!(n.edits.is_empty());
    }
    assert!(matches!(Norm::new("Grüße").text, Cow::Borrowed(_)));
}

#[test]
fn norm_maps_back_to_original_bytes() {
    let s = "a%40\u{200b}ｂ\u{301}c";
    let n = Norm::new(s);
    assert_eq!(n.text, "a@bc");
    assert_eq!(n.to_orig(0..1), 0..1);
    assert_eq!(n.to_orig(1..2), 1..4);
    assert_eq!(n.to_orig(2..3), 7..10);
    assert_eq!(n.to_orig(3..4), 12..13);
    assert_eq!(n.to_orig(1..4), 1..13);
    assert_eq!(n.to_orig(0..4), 0..s.len());
}

#[test]
fn digit_table_matches_unicode_nd() {
    let nd = Regex::new(r"^\p{Nd}$").expect("regex");
    let cf = Regex::new(r"^\p{Cf}$").expect("regex");
    let pd = Regex::new(r"^\p{Pd}$").expect("regex");
    let mut buf = [0u8; 4];
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let s: &str = c.encode_utf8(&mut buf);
        assert_eq!(
            decimal_digit(u32::from(c)).is_some(),
            nd.is_match(s),
            "{c:?}"
        );
        if cf.is_match(s) {
            assert_eq!(fold_char(c), Fold::Drop, "{c:?}");
        }
        if pd.is_match(s) && !c.is_ascii() {
            assert_eq!(fold_char(c), Fold::To('-'), "{c:?}");
        }
    }
    assert_eq!(decimal_digit(0x0669), Some('9'));
    assert_eq!(decimal_digit(0x1D7FF), Some('9'));
    assert_eq!(decimal_digit(0x1E5F1), Some('0'));
    for table in [DECIMAL_DIGITS, DASHES, SPACES, INVISIBLE] {
        assert!(
            table.windows(2).all(|w| w[0].1 < w[1].0),
            "tables are sorted"
        );
    }
}

#[test]
fn luhn_and_card_windows() {
    assert!(luhn(b"4111111111111111"));
    assert!(luhn(b"4111 1111 1111 1111"));
    assert!(!luhn(b"4111111111111112"));
    let mut found = Vec::new();
    let s = b"2026 4111 1111 1111 1111";
    card_spans(s, 0..s.len(), &mut |r| found.push(r));
    assert_eq!(found, vec![5..s.len()]);
}

/// Adversarial inputs finish quickly: every retry is bounded.
#[test]
fn worst_cases_stay_linear() {
    let all = redactor(&Detector::ALL);
    let inputs = [
        "1 ".repeat(20_000),
        "DE89".repeat(10_000),
        format!("{}@b.1", "a".repeat(40_000)),
        "1.".repeat(20_000),
        "555-".repeat(10_000),
        "eyJhb.".repeat(10_000),
        "AKIA".repeat(10_000),
        "+1 ".repeat(10_000),
        "-----BEGIN PRIVATE KEY-----".repeat(2_000),
    ];
    for input in inputs {
        let started = std::time::Instant::now();
        let _ = all.redact(&input);
        let took = started.elapsed();
        assert!(took.as_secs() < 5, "{} took {took:?}", &input[..12]);
    }
}

/// Throughput on a realistic 256 KB string: `cargo test --release -- --ignored`.
#[test]
#[ignore = "timing, run in release"]
fn throughput() {
    let all = redactor(&Detector::ALL);
    let chunk = "Customer called on 2026-11-26T08:19:58Z about order ORD-20261126-0042, \
                 version 1.2.3, amount 1234.56 EUR. Grüße! ";
    let plain = chunk.repeat(256 * 1024 / chunk.len());
    let with_pii = format!("{plain} mail alice@example.com card 4111 1111 1111 1111");
    for (name, s) in [("plain", &plain), ("pii", &with_pii)] {
        let started = std::time::Instant::now();
        let runs = 20;
        for _ in 0..runs {
            std::hint::black_box(all.redact(s));
        }
        let per = started.elapsed() / runs;
        let mbps = s.len() as f64 / per.as_secs_f64() / 1e6;
        println!("{name}: {per:?} per 256 KB ({mbps:.0} MB/s)");
    }
}

/// One scan, many detectors: a candidate of one detector, valid or not,
/// never hides an overlapping candidate of another.
#[test]
fn overlapping_candidates_of_different_detectors_are_all_found() {
    let all = redactor(&Detector::ALL);
    let cases = [
        // A rejected email candidate around a valid SSN.
        ("078-05-1120@x.1", "[US_SSN]@x.1"),
        // Phones inside a card-shaped digit run.
        ("555-123-4567 555-987-6543", "[PHONE] [PHONE]"),
        (
            "call (555) 123-4567 4111 1111 1111 1111",
            "call [PHONE] [CREDIT_CARD]",
        ),
        ("ip 10.0.0.1 4111 1111 1111 1111", "ip [IPV4] [CREDIT_CARD]"),
        // An email whose local part starts inside a phone number.
        ("+1 415 555 0000.bob@example.com", "[PHONE]"),
        (
            "tel +1 415 555 0000, bob@example.com",
            "tel [PHONE], [EMAIL]",
        ),
        // A rejected IBAN candidate around a valid one, next to an SSN.
        (
            "AB12 DE89 3704 0044 0532 0130 00 078-05-1120",
            "AB12 [IBAN] [US_SSN]",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(apply(&all, input), want, "on {input:?}");
    }
}

#[test]
fn candidates_starting_at_the_same_position_are_all_tried() {
    let owned = vec![("short".to_owned(), "[0-9]{3}-[0-9]{2}".to_owned())];
    let r = Redactor::new(&[Detector::UsSsn, Detector::Phone], &owned).expect("compiles");
    // Custom, SSN and phone candidates all start at the same digit; the
    // longest span wins the label.
    assert_eq!(apply(&r, "id 078-05-1120."), "id [US_SSN].");
    assert_eq!(apply(&r, "id 078-05."), "id [SHORT].");
    assert_eq!(apply(&r, "555-123-4567"), "[PHONE]");
}

#[test]
fn email_local_parts_end_at_non_word_characters() {
    let email = redactor(&[Detector::Email]);
    let cases = [
        ("«alice@example.com»", "«[EMAIL]»"),
        ("☕alice@example.com", "☕[EMAIL]"),
        ("中alice@example.com", "[EMAIL]"),
        ("x…bob@example.com", "x…[EMAIL]"),
        ("a@b.co«c", "[EMAIL]«c"),
        ("a@b.co+c@d.co", "[EMAIL]"),
    ];
    for (input, want) in cases {
        assert_eq!(apply(&email, input), want, "on {input:?}");
    }
    assert_eq!(exact_email("x«y@b.co»", 0.."x«y@b.co»".len()), Some(3..9));
    assert_eq!(exact_email("a@b..co", 0..7), None);
    assert_eq!(exact_email("a@b", 0..3), None);
}

#[test]
fn long_matches_do_not_make_the_scan_quadratic() {
    let owned = vec![("word".to_owned(), "[a-z]+".to_owned())];
    let r = Redactor::new(&Detector::ALL, &owned).expect("compiles");
    let input = format!("{} 078-05-1120", "a".repeat(200_000));
    let started = std::time::Instant::now();
    assert_eq!(apply(&r, &input), "[WORD] [US_SSN]");
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
    // A card that starts in the last bytes of a long custom match still
    // extends the redaction past it.
    let owned = vec![("tag".to_owned(), "T[A-Z0-9]+".to_owned())];
    let r = Redactor::new(&[Detector::CreditCard], &owned).expect("compiles");
    let input = format!("T{}4111-1111-1111-1111 ok", "X".repeat(1000));
    assert_eq!(apply(&r, &input), "[TAG] ok");
}

#[test]
fn custom_patterns_only_scan_strings_that_can_hold_them() {
    let owned = vec![("ticket-secret".to_owned(), "SECRET-[0-9]{6}".to_owned())];
    let r = Redactor::new(&[Detector::Email], &owned).expect("compiles");
    assert!(!r.plausible("no capital s here"));
    assert!(r.plausible("a SECRET maybe"));
    assert_eq!(r.redact("secret-123456"), None);
}

/// The pre-filter only skips what the scan would not find: on random strings dense in digits,
/// separators and letters, every string it rules out for a detector yields no span of that
/// detector when scanned anyway.
#[test]
fn the_prefilter_never_skips_a_match() {
    const PIECES: [&str; 34] = [
        "0",
        "1",
        "4",
        "5",
        "9",
        "41",
        "078",
        "555",
        " ",
        "-",
        ".",
        "(",
        ")",
        "_",
        "\t",
        "+",
        "a",
        "DE",
        "Z",
        "x",
        "@",
        ":",
        "/",
        " - ",
        "078-05-1120",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "+1 415 555 0134",
        "(555) 123-4567",
        "555.123.4567",
        "DE89 3704 0044 0532 0130 00",
        "5 3 6 - 2 2 - 1 2 3 4",
        "1-555-123-4567",
        "GB82WEST12345698765432",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for d in Detector::ALL {
        let one = redactor(&[d]);
        for _ in 0..3000 {
            let len = 1 + next() % 64;
            let mut s: String = (0..len % 8)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            // Break the shapes here and there: a separator or a letter where a digit was.
            if next() % 2 == 0 && !s.is_empty() {
                let at = (next() % s.len() as u64) as usize;
                if s.is_char_boundary(at) && s.is_char_boundary(at + 1) {
                    let by = [" ", "x", "..", "(", "  -"][(next() % 5) as usize];
                    s.replace_range(at..at + 1, by);
                }
            }
            if !one.plausible(&s) {
                assert!(one.scan(&s).is_empty(), "{} skipped {s:?}", d.name());
            }
        }
    }
}

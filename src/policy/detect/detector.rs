//! [`Detector`]: the catalogue of built-in detectors, their config names and labels.

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    Email,
    CreditCard,
    Iban,
    UsSsn,
    Phone,
    Ipv4,
    Jwt,
    AwsAccessKey,
    PrivateKey,
}

impl Detector {
    /// Every built-in detector, in config order.
    pub const ALL: [Detector; 9] = [
        Detector::Email,
        Detector::CreditCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::Phone,
        Detector::Ipv4,
        Detector::Jwt,
        Detector::AwsAccessKey,
        Detector::PrivateKey,
    ];

    /// Config name: "email", "credit_card", "iban", "us_ssn", "phone", "ipv4",
    /// "jwt", "aws_access_key", "private_key".
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::CreditCard => "credit_card",
            Detector::Iban => "iban",
            Detector::UsSsn => "us_ssn",
            Detector::Phone => "phone",
            Detector::Ipv4 => "ipv4",
            Detector::Jwt => "jwt",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::PrivateKey => "private_key",
        }
    }

    /// Replacement label without brackets, upper case: "EMAIL", "CREDIT_CARD", ...
    pub fn label(self) -> &'static str {
        match self {
            Detector::Email => "EMAIL",
            Detector::CreditCard => "CREDIT_CARD",
            Detector::Iban => "IBAN",
            Detector::UsSsn => "US_SSN",
            Detector::Phone => "PHONE",
            Detector::Ipv4 => "IPV4",
            Detector::Jwt => "JWT",
            Detector::AwsAccessKey => "AWS_ACCESS_KEY",
            Detector::PrivateKey => "PRIVATE_KEY",
        }
    }

    /// The detector of a config name (ASCII case ignored).
    pub fn from_name(s: &str) -> Option<Detector> {
        Detector::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
    }
}

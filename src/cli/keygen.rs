//! `customs keygen`: a fresh API key and the line that goes in the config.

use sha2::{Digest, Sha256};
use std::process::ExitCode;

/// Prefix that makes keys recognisable to secret scanners and people.
const PREFIX: &str = "cst_";

pub fn run() -> anyhow::Result<ExitCode> {
    // 192 bits of randomness.
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let key = format!("{PREFIX}{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    println!("key:    {key}");
    println!("config: api_key: sha256:{digest}");
    eprintln!("Give the key to the caller once; customs stores only the sha256: line.");
    Ok(ExitCode::SUCCESS)
}

//! `customs demo`: the sample partner API plus `customs serve` with the
//! repo's `customs.yaml` and `policies/`, and curl commands to try.

use anyhow::{Context, bail};
use customs::demo::{SAMPLE_API_ADDR, sample_api};
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

/// The public demo key whose hash is in the sample `customs.yaml`.
const DEMO_KEY: &str = "cst_demo_public_key_replace_me";

pub fn run(args: &super::ConfigArg) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(SAMPLE_API_ADDR))
        .with_context(|| format!("cannot start the sample API on {SAMPLE_API_ADDR}"))?;
    rt.spawn(sample_api(listener));
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(&args.config)
        .env("CUSTOMS_HASH_KEY", random_hex()?)
        .env("ACME_TOKEN", random_hex()?)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start customs serve")?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from customs serve")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.next().transpose()?.unwrap_or_default();
    let Some(proxy) = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("proxy="))
    else {
        let status = child.wait()?;
        bail!("customs serve did not start ({status}); see the messages above");
    };
    print_tour(
        proxy,
        ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix("admin=")),
    );
    // Ctrl-C reaches the child too (same process group); it drains and exits.
    let status = child.wait()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn random_hex() -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(b))
}

fn print_tour(proxy: &str, admin: Option<&str>) {
    let k = format!("-H 'X-Api-Key: {DEMO_KEY}'");
    println!(
        "
customs demo: sample partner API on {SAMPLE_API_ADDR}, customs on {proxy}

1. Read incidents through customs (response policy incident-inbound: cards masked,
   SSNs replaced, e-mails and phone numbers in free text redacted):
   curl -s {k} http://{proxy}/acme/api/incidents/INC0010003

   The same incident straight from the partner, unfiltered:
   curl -s http://{SAMPLE_API_ADDR}/api/incidents/INC0010003

2. Send an incident (request policy incident-outbound: allow-list, card masked,
   assignee pseudonymised); the partner echoes what it received:
   curl -s {k} -H 'Content-Type: application/json' -X POST http://{proxy}/acme/api/incidents/INC0010003 \\
     -d '{{\"incidents\":[{{\"id\":\"INC0010003\",\"title\":\"VPN down\",\"internal_notes\":\"VIP\",\"customer\":{{\"card_number\":\"4111 1111 1111 1111\"}},\"assignee\":{{\"email\":\"sam@corp.example\"}}}}]}}'

3. A refused request (a password must never leave): 403 policy_refused
   curl -si {k} -H 'Content-Type: application/json' -X POST http://{proxy}/acme/api/incidents/INC0010003 \\
     -d '{{\"incidents\":[{{\"id\":\"INC0010003\",\"customer\":{{\"password\":\"hunter2\"}}}}]}}'

4. A denied route (not declared): 404 no_route; and no key: 401 unauthenticated
   curl -si {k} -X DELETE http://{proxy}/acme/api/incidents/INC0010003
   curl -si http://{proxy}/acme/api/incidents

5. The crossing log and the metrics:
   tail -n 3 audit/crossings.jsonl
   {}

Ctrl-C stops both.",
        admin.map_or_else(String::new, |a| format!("curl -s http://{a}/metrics | grep ^customs_requests_total"))
    );
}

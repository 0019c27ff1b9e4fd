//! `customs audit verify FILE...`: checks the crossing log's hash chain.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify files oldest first, e.g. `customs audit verify audit/crossings*.jsonl`.
    Verify {
        /// Log files, rotated ones first (a shell glob lists them in order).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: &AuditCmd) -> anyhow::Result<ExitCode> {
    let AuditCmd::Verify { files } = cmd;
    match customs::audit::verify_summary(files) {
        Ok(v) => {
            println!("intact: {} records", v.records);
            // A chain cannot tell that records were cut from its end: the
            // last seq and hash, kept elsewhere, can.
            if let (Some(seq), Some(hash)) = (v.last_seq, &v.last_hash) {
                println!("last: seq {seq} hash {hash}");
            }
            if v.first_seq.is_some_and(|s| s != 1) {
                println!(
                    "note: the first record is seq {}; earlier files were not given, so its prev was taken as given",
                    v.first_seq.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("broken: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

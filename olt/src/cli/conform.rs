//! `olt conform onu`: the ONU conformance suite (the `conformance` crate) against one running
//! ONU, on the address it answers to.
//!
//! The report is complete and written whatever becomes of the target; the exit code says
//! which way the run went (docs/conformance.md, Exit codes).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use conformance::{OnuSuite, Report, RunEnd, Target};
use omci_codec::OnuId;
use pon::transport::{Framing, TransportKind};
use tokio::net::UdpSocket;

use super::args::ConformOnuArgs;
use super::usage;

/// Exit code: every check passed (or was skipped with its reason).
const PASSED: u8 = 0;
/// Exit code: a check failed.
const FAILED: u8 = 1;
/// Exit code: the target never answered, or stopped answering during the run.
const TARGET_LOST: u8 = 3;
/// Exit code: the suite could not run to the end (its socket failed), or could not write its
/// report.
const SUITE_STOPPED: u8 = 4;

/// `olt conform onu`.
pub(super) fn conform_onu(a: ConformOnuArgs) -> Result<ExitCode> {
    let framing = match (a.transport, a.cterm) {
        (TransportKind::Lab, None) => Framing::Lab,
        (TransportKind::Lab, Some(_)) => return Ok(usage("--cterm needs --transport obbaa")),
        (TransportKind::Obbaa, Some(cterm)) => Framing::obbaa(cterm),
        (TransportKind::Obbaa, None) => {
            return Ok(usage(
                "--transport obbaa needs --cterm NAME (the ONU's channel termination)",
            ));
        }
    };
    // As `olt rollout` takes it: a file, a whole image, under 4 GiB (a usage error otherwise).
    let image = match super::rollout::open_image(&a.image)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let target = Target {
        name: format!("ONU {} at {}", a.onu_id, a.target),
        onu: OnuId(a.onu_id),
        image,
        timeout: Duration::from_millis(a.timeout_ms),
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        call_in_progress: a.call_in_progress,
        emergency_call_in_progress: a.emergency_call_in_progress,
        framing,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let socket = pon::transport::bind_unicast(a.listen)
            .and_then(UdpSocket::from_std)
            .with_context(|| format!("binding {}", a.listen));
        match socket {
            Ok(socket) => conformance::driver::run(target, socket, a.target.into())
                .await
                .finish(),
            Err(e) => {
                // No socket, no run: the report still says so, check by check.
                let mut suite = OnuSuite::new(target, Instant::now());
                suite.abandon(&format!("{e:#}"));
                suite.finish()
            }
        }
    });
    print!("{}", report.table());
    if let Err(e) = write_outputs(&a, &report) {
        eprintln!("olt: {e:#}");
        return Ok(ExitCode::from(SUITE_STOPPED));
    }
    let code = match &report.end {
        RunEnd::Unreachable { why } => {
            eprintln!("olt: {why}; is it running, with --olt {}?", a.listen);
            TARGET_LOST
        }
        RunEnd::Lost { why, .. } => {
            eprintln!("olt: {why}");
            TARGET_LOST
        }
        RunEnd::Internal { why } => {
            eprintln!("olt: {why}");
            SUITE_STOPPED
        }
        RunEnd::Completed | RunEnd::Running if report.failed > 0 => FAILED,
        RunEnd::Completed | RunEnd::Running => PASSED,
    };
    Ok(ExitCode::from(code))
}

/// The JUnit and JSON files asked for.
fn write_outputs(a: &ConformOnuArgs, report: &Report) -> Result<()> {
    if let Some(p) = &a.junit {
        std::fs::write(p, report.junit()).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

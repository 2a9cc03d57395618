//! `olt conform onu`: the ONU conformance suite (the `conformance` crate) against one running
//! ONU, on the address it answers to.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use conformance::{SuiteError, Target};
use omci_codec::OnuId;
use tokio::net::UdpSocket;

use super::args::ConformOnuArgs;

/// `olt conform onu`.
pub(super) fn conform_onu(a: ConformOnuArgs) -> Result<ExitCode> {
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
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let suite = runtime.block_on(async {
        let socket = UdpSocket::from_std(
            pon::transport::bind_unicast(a.listen)
                .with_context(|| format!("binding {}", a.listen))?,
        )?;
        anyhow::Ok(conformance::driver::run(target, socket, a.target.into()).await?)
    })?;
    let report = match suite.finish() {
        Ok(report) => report,
        Err(stopped) => match stopped.error {
            e @ SuiteError::Silent { .. } => {
                bail!("{e}; is it running, with --olt {}?", a.listen)
            }
            e => return Err(e.into()),
        },
    };
    print!("{}", report.table());
    if let Some(p) = &a.junit {
        std::fs::write(p, report.junit()).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

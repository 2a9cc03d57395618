//! `olt conform onu`: the ONU conformance suite against one running ONU.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use omci_codec::OnuId;

use super::args::ConformOnuArgs;

/// `olt conform onu`.
pub(super) fn conform_onu(a: ConformOnuArgs) -> Result<ExitCode> {
    // As `olt rollout` takes it: a file, a whole image, under 4 GiB (a usage error otherwise).
    let image = match super::rollout::open_image(&a.image)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let target = crate::conform::Target {
        addr: a.target,
        listen: a.listen,
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
    let report = runtime.block_on(crate::conform::run(target))?;
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

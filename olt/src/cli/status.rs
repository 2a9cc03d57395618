//! `olt status`: what every ONU runs, read over OMCI (ONU-G's vendor and serial number, and
//! both software images: version, committed, active, valid), as a table or as JSON. Nothing is
//! changed on any ONU.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use omci_codec::OnuId;
use serde::Serialize;

use super::args::{StatusArgs, default_group, onu_map};
use super::ctrl_c;
use super::rollout::tci_seed;
use crate::campaign::Campaign;
use crate::driver::{self, Campaigns, DriverConfig, PonTarget};
use crate::engine::PonPort;
use crate::session::{Identity, Outcome, SessionConfig};

/// The JSON `olt status --json` writes.
#[derive(Serialize)]
struct StatusReport {
    /// "olt-status".
    format: &'static str,
    /// The format's version (1).
    format_version: u32,
    /// The tool's version.
    tool_version: &'static str,
    /// Every ONU, by PON port and ONU-ID.
    onus: Vec<OnuStatus>,
}

/// One ONU's status.
#[derive(Serialize)]
struct OnuStatus {
    pon: PonPort,
    id: u16,
    /// Whether it answered.
    answered: bool,
    /// Why not, when it did not.
    reason: Option<String>,
    #[serde(flatten)]
    identity: Option<Identity>,
    /// Image 0 and image 1.
    images: Vec<Option<ImageStatus>>,
}

/// One software image as read.
#[derive(Serialize)]
struct ImageStatus {
    version: Option<String>,
    committed: Option<bool>,
    active: Option<bool>,
    valid: Option<bool>,
}

/// `olt status`.
pub(super) fn status(a: StatusArgs) -> Result<ExitCode> {
    let onus = onu_map(a.onus)?;
    let cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        tci_seed: tci_seed(),
        ..SessionConfig::default()
    };
    let now = Instant::now();
    let mut campaigns = Campaigns::new();
    let mut pons = BTreeMap::new();
    for (pon, onus) in onus {
        let ids: Vec<OnuId> = onus.keys().copied().collect();
        campaigns.insert(pon, Campaign::status_only(&ids, &cfg, now));
        let group = default_group(pon);
        // `olt status` speaks the lab's framing only, as `olt abort` does.
        pons.insert(
            pon,
            PonTarget {
                group,
                onus,
                framing: pon::transport::Framing::Lab,
            },
        );
    }
    let dcfg = DriverConfig {
        listen: a.listen,
        pons,
        pcap: None,
        progress: false,
        journal: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let campaigns = runtime.block_on(driver::run(campaigns, &dcfg, ctrl_c))?;
    let mut all = Vec::new();
    for (pon, c) in &campaigns {
        for s in c.olt().sessions() {
            let answered = s.outcome() == Some(&Outcome::Read);
            let reason = match s.outcome() {
                Some(Outcome::Failed(why)) => Some(why.clone()),
                _ => None,
            };
            let images = (0..2u8)
                .map(|i| {
                    s.image_attributes(i).map(|a| ImageStatus {
                        version: a.version.map(|v| crate::session::version_text(&v)),
                        committed: a.is_committed,
                        active: a.is_active,
                        valid: a.is_valid,
                    })
                })
                .collect();
            all.push(OnuStatus {
                pon: *pon,
                id: s.onu().0,
                answered,
                reason,
                identity: s.identity().cloned(),
                images,
            });
        }
    }
    let answered = all.iter().all(|o| o.answered);
    if a.json {
        let report = StatusReport {
            format: "olt-status",
            format_version: 1,
            tool_version: env!("CARGO_PKG_VERSION"),
            onus: all,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&all, campaigns.len() > 1);
    }
    Ok(if answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_table(all: &[OnuStatus], several: bool) {
    println!(
        "{:>5}  {:<13} {:<14} {:<30} {:<30}",
        "ONU", "serial", "ONU-G version", "image 0", "image 1"
    );
    for o in all {
        let name = if several {
            format!("{}/{}", o.pon.0, o.id)
        } else {
            o.id.to_string()
        };
        if !o.answered {
            println!(
                "{name:>5}  {:<13} {}",
                "?",
                o.reason.as_deref().unwrap_or("no answer")
            );
            continue;
        }
        let image = |i: usize| match o.images.get(i).and_then(Option::as_ref) {
            Some(img) => {
                let mut flags = Vec::new();
                for (on, word) in [
                    (img.committed, "committed"),
                    (img.active, "active"),
                    (img.valid, "valid"),
                ] {
                    if on == Some(true) {
                        flags.push(word);
                    }
                }
                let version = img
                    .version
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .unwrap_or("-");
                let flags = if flags.is_empty() {
                    "not valid".to_string()
                } else {
                    flags.join(" ")
                };
                format!("{version} {flags}")
            }
            None => "?".into(),
        };
        println!(
            "{name:>5}  {:<13} {:<14} {:<30} {:<30}",
            o.identity.as_ref().map_or("?", |i| i.serial.as_str()),
            o.identity
                .as_ref()
                .and_then(|i| i.version.as_deref())
                .unwrap_or("?"),
            image(0),
            image(1)
        );
    }
}

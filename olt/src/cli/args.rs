//! The `olt` command line's arguments: what each subcommand takes, with the range of every
//! value checked where it is parsed.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use omci_codec::OnuId;
use omci_codec::obbaa::CtermName;
use pon::transport::{self as net, TransportKind};

use crate::engine::{Mode, PonPort};
use crate::limits;

#[derive(Args)]
pub(super) struct RolloutArgs {
    /// The image file (from `onu image build`).
    #[arg(long)]
    pub(super) image: PathBuf,
    /// A delta package to --image from one base version (`onu image delta`), repeatable (one
    /// per base): the ONUs whose committed and active image is its base get it, one download
    /// per base; the others, and any ONU that refuses its delta, get --image.
    #[arg(long = "delta", value_name = "FILE")]
    pub(super) deltas: Vec<PathBuf>,
    /// When the ONUs get their delta: per-base (each base with a delta gets it), or
    /// when-saving (in multicast, a wave that needs --image for some ONUs sends it to all of
    /// them in one download, since their deltas would only add to it).
    #[arg(long, value_enum, default_value_t = crate::campaign::DeltaPolicy::PerBase)]
    pub(super) delta_policy: crate::campaign::DeltaPolicy,
    /// ONUs: [PON/]ID@ADDR or [PON/]FIRST-LAST@ADDR (consecutive ports from ADDR; at most
    /// 128 ONUs a PON); PON is the OLT's PON port (1..=16, default 1); repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    pub(super) onus: Vec<OnuRange>,
    /// Only the ONUs of --onus with these serial numbers (ONU-G, as `olt status` shows them:
    /// 4 vendor letters and 8 hex digits, e.g. LABS0000000A), comma-separated, repeatable;
    /// the others are skipped before any download.
    #[arg(long = "serials", value_parser = parse_serials)]
    pub(super) serials: Vec<Vec<String>>,
    /// How the windows travel (default: multicast; unicast with --transport obbaa, which
    /// has no multicast).
    #[arg(long, value_enum)]
    pub(super) mode: Option<Mode>,
    /// How each datagram carries its OMCI frame: lab (the lab's envelope, docs/wire.md) or
    /// obbaa (the Broadband Forum's OB-BAA framing, for its ONU simulator: unicast only,
    /// plain G.988, needs --cterm).
    #[arg(long, value_enum, default_value_t = TransportKind::Lab)]
    pub(super) transport: TransportKind,
    /// With --transport obbaa: the channel termination name of a PON port's ONUs, [PON/]NAME
    /// (1 to 30 bytes; PON 1 when not given); one for each PON port of --onus.
    #[arg(long = "cterm", value_parser = parse_pon_cterm)]
    pub(super) cterm: Vec<(PonPort, CtermName)>,
    /// The multicast download group of a PON port: [PON/]ADDR (joined by its ONUs on the
    /// loopback interface); repeatable, one per port. Default: 239.255.0.P:47000 for port P.
    #[arg(long = "group", value_parser = parse_pon_group)]
    pub(super) group: Vec<(PonPort, SocketAddrV4)>,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    pub(super) listen: SocketAddrV4,
    /// Sections per window proposed at Start (1..=256).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(limits::WINDOW.i64_range()))]
    pub(super) window: u16,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(limits::TIMEOUT_MS.u64_range()))]
    pub(super) timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(limits::RETRIES.i64_range()))]
    pub(super) retries: u8,
    /// How long an ONU may take to come back after Activate (s, 1..=3600).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(limits::REBOOT_TIMEOUT_S.u64_range()))]
    pub(super) reboot_timeout_s: u64,
    /// Write the JSON report here.
    #[arg(long)]
    pub(super) report: Option<PathBuf>,
    /// Draw the rollout as a self-contained HTML page here (each ONU's phases on a timeline,
    /// the window progress, the summary table; docs/scenarios.md, The picture).
    #[arg(long)]
    pub(super) html: Option<PathBuf>,
    /// Write every OMCI frame sent and received to this pcap (EtherType 0x88B5; `omci pcap`
    /// and Wireshark's community OMCI dissector read it).
    #[arg(long)]
    pub(super) pcap: Option<PathBuf>,
    /// The release manifest (from `onu image build`): its checksum must match --image; its
    /// model is the only one upgraded (others are refused); its rollout percent and start
    /// make the canary wave and the scheduled start.
    #[arg(long)]
    pub(super) manifest: Option<PathBuf>,
    /// The ONUs' public key (`onu image keygen`'s PREFIX.pub): before the first frame, the
    /// image's payload must match its SHA-256 and its signature must verify with this key, so
    /// that an image every ONU would refuse at End is refused here, with the reason.
    #[arg(long)]
    pub(super) public_key: Option<PathBuf>,
    /// The canary wave's share of the eligible ONUs, in percent (overrides the manifest's);
    /// 0: a single wave.
    #[arg(long, value_parser = clap::value_parser!(u8).range(limits::CANARY.i64_range()))]
    pub(super) canary: Option<u8>,
    /// The kill switch: halt the campaign when more than this percent of a wave's ONUs fail.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(limits::KILL_THRESHOLD.i64_range()))]
    pub(super) kill_threshold: u8,
    /// The health gate: how long an ONU must stay on the new image after its reboot (ms,
    /// 0..=3600000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(limits::HEALTH_SETTLE_MS.u64_range()))]
    pub(super) health_settle_ms: u64,
    /// Start no earlier than this (RFC 3339, e.g. 2026-11-23T06:00:00Z; overrides the
    /// manifest's rollout start), or "now".
    #[arg(long, value_parser = parse_start_at)]
    pub(super) start_at: Option<StartAt>,
    /// At most this many Download sections per second (group and unicast together).
    #[arg(long, value_parser = clap::value_parser!(u32).range(limits::PACE.i64_range()))]
    pub(super) pace: Option<u32>,
    /// Activate software's flags: 0 unconditionally, 1 unless a voice call is in progress, 2
    /// unless an emergency call is (the ONU then answers busy and the OLT asks again).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(limits::ACTIVATE_FLAGS.i64_range()))]
    pub(super) activate_flags: u8,
    /// How long a deferred activation is asked again before that ONU fails (s, 1..=86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(limits::ACTIVATE_DEFER_S.u64_range()))]
    pub(super) activate_defer_s: u64,
    /// Unicast mode: send strictly G.988, as open OLT stacks do (no window number or window
    /// CRC in the transport envelope; the ONU then counts windows itself).
    #[arg(long)]
    pub(super) strict: bool,
    /// Extended OMCI messages (G.988 A.3 extended set): sections of 1965 bytes instead of 31.
    #[arg(long)]
    pub(super) extended: bool,
    /// Break a rule on purpose (repeatable), to see an ONU's --check-olt catch it:
    /// ar-on-every-section, wrong-end-crc, no-busy-retry.
    #[arg(long = "quirk", value_parser = clap::builder::PossibleValuesParser::new(crate::session::OltQuirks::NAMES))]
    pub(super) quirks: Vec<String>,
    /// Journal the campaign to this file; when it exists, the campaign it records is resumed
    /// (ONUs it has committed are not upgraded again).
    #[arg(long)]
    pub(super) journal: Option<PathBuf>,
    /// With --journal: try again the ONUs the journal records as failed (after a transient
    /// fault: a power cut, a reboot, a link down). ONUs it records as upgraded are never
    /// touched again; a campaign halted by its kill switch stays halted.
    #[arg(long, requires = "journal")]
    pub(super) retry_failed: bool,
}

/// `olt download`: the first stage only.
#[derive(Args)]
pub(super) struct DownloadArgs {
    #[command(flatten)]
    pub(super) rollout: RolloutArgs,
    /// Once an ONU's image is downloaded and valid, activate it too (it reboots into it).
    #[arg(long)]
    pub(super) activate_on_success: bool,
    /// Once activated, commit it too (implies --activate-on-success): a one-shot upgrade.
    #[arg(long)]
    pub(super) commit_on_success: bool,
}

/// `olt activate`: the second stage, on ONUs that hold the image valid in their standby image.
#[derive(Args)]
pub(super) struct ActivateArgs {
    #[command(flatten)]
    pub(super) rollout: RolloutArgs,
    /// Once an ONU is back on the new image, commit it too.
    #[arg(long)]
    pub(super) commit_on_success: bool,
    /// The end of the maintenance window (RFC 3339): an activation the ONUs defer (a call in
    /// progress, with --activate-flags 1 or 2) is asked again until then, not longer. The
    /// window's start is --start-at.
    #[arg(long)]
    pub(super) until: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum ConformCommand {
    /// Run the ONU conformance suite against one ONU (it ends upgraded to --image, committed).
    ///
    /// Every check gets a verdict (pass, FAIL, skip with why, or ERROR when the target
    /// stopped answering), and the table, --junit and --json are written whatever became of
    /// the target. Exit codes: 0 every check passed or was skipped; 1 a check failed; 2 a
    /// usage error; 3 the target never answered, or stopped answering during the run; 4 the
    /// suite could not run (its socket failed) or could not write its report.
    Onu(ConformOnuArgs),
}

#[derive(Args)]
pub(super) struct ConformOnuArgs {
    /// The ONU's OMCC address (loopback only).
    #[arg(long, value_parser = net::parse_loopback)]
    pub(super) target: SocketAddrV4,
    /// The address the ONU answers to (its --olt).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    pub(super) listen: SocketAddrV4,
    /// The ONU's ONU-ID (0..=65534).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=65534))]
    pub(super) onu_id: u16,
    /// An image the ONU accepts (its model, signed with a key it trusts).
    #[arg(long)]
    pub(super) image: PathBuf,
    /// Response timeout (ms).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub(super) timeout_ms: u64,
    /// How long the ONU may take to reboot (s).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(super) reboot_timeout_s: u64,
    /// The ONU has a voice call in progress (onu run --voice-call): check that Activate with
    /// flag 1 answers busy.
    #[arg(long)]
    pub(super) call_in_progress: bool,
    /// The ONU has an emergency call in progress (onu run --emergency-call): check that
    /// Activate with flag 2 answers busy.
    #[arg(long)]
    pub(super) emergency_call_in_progress: bool,
    /// Write JUnit XML here (always, whatever became of the target).
    #[arg(long)]
    pub(super) junit: Option<PathBuf>,
    /// Write the results as JSON here (always, whatever became of the target).
    #[arg(long)]
    pub(super) json: Option<PathBuf>,
    /// How each datagram carries its OMCI frame: lab (the lab's envelope) or obbaa (the
    /// Broadband Forum's OB-BAA framing, needs --cterm; the checks of the trailer and of the
    /// window CRC are then skipped).
    #[arg(long, value_enum, default_value_t = TransportKind::Lab)]
    pub(super) transport: TransportKind,
    /// With --transport obbaa: the ONU's channel termination name (1 to 30 bytes).
    #[arg(long, value_parser = net::parse_cterm)]
    pub(super) cterm: Option<CtermName>,
}

#[derive(Args)]
pub(super) struct AbortArgs {
    /// ONUs: ID@ADDR or FIRST-LAST@ADDR (consecutive ports from ADDR); repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    pub(super) onus: Vec<OnuRange>,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    pub(super) listen: SocketAddrV4,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(limits::TIMEOUT_MS.u64_range()))]
    pub(super) timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(limits::RETRIES.i64_range()))]
    pub(super) retries: u8,
    /// Write the JSON report here.
    #[arg(long)]
    pub(super) report: Option<PathBuf>,
}

/// `olt status`: what every ONU runs, read over OMCI.
#[derive(Args)]
pub(super) struct StatusArgs {
    /// ONUs: [PON/]ID@ADDR or [PON/]FIRST-LAST@ADDR (consecutive ports from ADDR); repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    pub(super) onus: Vec<OnuRange>,
    /// The OLT's own address (loopback only): the ONUs answer here.
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    pub(super) listen: SocketAddrV4,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(limits::TIMEOUT_MS.u64_range()))]
    pub(super) timeout_ms: u64,
    /// Retransmissions of a request before an ONU is reported silent (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(limits::RETRIES.i64_range()))]
    pub(super) retries: u8,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub(super) json: bool,
}

/// When a rollout starts (`--start-at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StartAt {
    /// At once, whatever the manifest says.
    Now,
    /// No earlier than this.
    At(std::time::SystemTime),
}

/// `now` or an RFC 3339 time (`2026-11-23T06:00:00Z`, years 1970 to 9999).
pub(super) fn parse_start_at(s: &str) -> Result<StartAt, String> {
    if s == "now" {
        return Ok(StartAt::Now);
    }
    humantime::parse_rfc3339_weak(s)
        .map(StartAt::At)
        .map_err(|_| {
            format!("{s:?} is not \"now\" or an RFC 3339 time (e.g. 2026-11-23T06:00:00Z)")
        })
}

/// Serial numbers, from one `--serials` value: comma-separated, each 4 vendor letters and 8 hex
/// digits, read in capitals (`labs0000000a` is `LABS0000000A`).
pub(super) fn parse_serials(s: &str) -> Result<Vec<String>, String> {
    s.split(',')
        .map(str::trim)
        .map(|sn| {
            let ok = sn.len() == 12
                && sn.is_char_boundary(4)
                && sn[..4].bytes().all(|b| b.is_ascii_alphabetic())
                && sn[4..].bytes().all(|b| b.is_ascii_hexdigit());
            if ok {
                Ok(sn.to_ascii_uppercase())
            } else {
                Err(format!(
                    "{sn:?} is not a serial number: 4 vendor letters and 8 hex digits, e.g. \
                     LABS0000000A"
                ))
            }
        })
        .collect()
}

/// ONUs of one PON port, each with its OMCC address, from one `--onus` value.
pub(super) type OnuRange = (PonPort, Vec<(OnuId, SocketAddrV4)>);

/// The most ONUs of one PON port.
pub(super) const MAX_ONUS: u16 = 128;

/// `[PON/]REST`: the PON port a value names (1 when none), and the rest.
fn pon_prefix(s: &str) -> Result<(PonPort, &str), String> {
    match s.split_once('/') {
        None => Ok((PonPort::FIRST, s)),
        Some((p, rest)) => p
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=PonPort::MAX).contains(n))
            .map(|n| (PonPort(n), rest))
            .ok_or_else(|| format!("{p:?} is not a PON port (1 to {})", PonPort::MAX)),
    }
}

/// `[PON/]ID@ADDR` or `[PON/]FIRST-LAST@ADDR`: ONU FIRST at ADDR, the next ones at the next
/// ports, on PON port PON (1 when not given).
pub(super) fn parse_onus(s: &str) -> Result<OnuRange, String> {
    let (pon, rest) = pon_prefix(s)?;
    let (ids, addr) = rest.split_once('@').ok_or_else(|| {
        format!("{s:?} is not [PON/]ID@ADDR or [PON/]FIRST-LAST@ADDR (e.g. 1-16@127.0.0.1:40001)")
    })?;
    let addr = net::parse_loopback(addr)?;
    let id = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|n| *n <= 65534)
            .ok_or_else(|| format!("{t:?} is not an ONU-ID (0 to 65534)"))
    };
    let (first, last) = match ids.split_once('-') {
        Some((a, b)) => (id(a)?, id(b)?),
        None => (id(ids)?, id(ids)?),
    };
    if last < first || last - first >= MAX_ONUS {
        return Err(format!(
            "{ids:?}: give FIRST-LAST with FIRST <= LAST, at most {MAX_ONUS} ONUs"
        ));
    }
    let onus = (first..=last)
        .map(|n| {
            let port = addr
                .port()
                .checked_add(n - first)
                .ok_or_else(|| format!("{s:?}: the ports pass 65535"))?;
            Ok((OnuId(n), SocketAddrV4::new(*addr.ip(), port)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((pon, onus))
}

/// `[PON/]NAME`: the OB-BAA channel termination name of a PON port. A name may hold `/`: only
/// digits before the first one make a PON port.
pub(super) fn parse_pon_cterm(s: &str) -> Result<(PonPort, CtermName), String> {
    let (pon, name) = match s.split_once('/') {
        Some((p, _)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => pon_prefix(s)?,
        _ => (PonPort::FIRST, s),
    };
    Ok((pon, net::parse_cterm(name)?))
}

/// `[PON/]GROUP`: the multicast download group of a PON port.
pub(super) fn parse_pon_group(s: &str) -> Result<(PonPort, SocketAddrV4), String> {
    let (pon, rest) = pon_prefix(s)?;
    Ok((pon, net::parse_group(rest)?))
}

/// The default multicast download group of PON port `pon`: 239.255.0.P:47000.
pub(super) fn default_group(pon: PonPort) -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 0, pon.0), 47000)
}

/// The ONUs given, by PON port and ONU-ID; an ONU given twice, or more than 128 on one port,
/// is an error.
pub(super) fn onu_map(
    given: Vec<OnuRange>,
) -> Result<BTreeMap<PonPort, BTreeMap<OnuId, SocketAddrV4>>> {
    let mut pons: BTreeMap<PonPort, BTreeMap<OnuId, SocketAddrV4>> = BTreeMap::new();
    let mut addresses = std::collections::HashSet::new();
    for (pon, onus) in given {
        for (id, addr) in onus {
            if pons.entry(pon).or_default().insert(id, addr).is_some() {
                bail!("ONU {} of {pon} is given twice", id.0);
            }
            if !addresses.insert(addr) {
                bail!("{addr} is given for two ONUs");
            }
        }
    }
    for (pon, onus) in &pons {
        if onus.len() > usize::from(MAX_ONUS) {
            bail!(
                "{} ONUs are given for {pon}: a PON has at most {MAX_ONUS}",
                onus.len()
            );
        }
    }
    Ok(pons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn onu_sets_give_consecutive_ports_and_refuse_what_no_peer_can_reach() {
        let (pon, onus) = parse_onus("1-16@127.0.0.1:40001").unwrap();
        assert_eq!((pon, onus.len()), (PonPort::FIRST, 16));
        assert_eq!(onus[15], (OnuId(16), "127.0.0.1:40016".parse().unwrap()));
        assert_eq!(parse_onus("2/7@127.0.0.1:40001").unwrap().0, PonPort(2));
        for (bad, names) in [
            ("1-16@127.0.0.1:0", "port 0"),
            ("1@127.255.255.255:40001", "broadcast"),
            ("1-2@127.0.0.1:65535", "65535"),
            ("3-1@127.0.0.1:40001", "FIRST <= LAST"),
            ("0-128@127.0.0.1:1000", "at most 128"),
            ("17/1@127.0.0.1:1000", "1 to 16"),
            ("2/1@127.0.0.1:0", "port 0"),
            ("65535@127.0.0.1:1000", "0 to 65534"),
            ("1-16", "ID@ADDR"),
            ("1@10.0.0.1:40001", "loopback"),
        ] {
            let e = parse_onus(bad).unwrap_err();
            assert!(e.contains(names), "{bad}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn a_start_is_now_or_an_rfc_3339_time() {
        assert_eq!(parse_start_at("now"), Ok(StartAt::Now));
        let at = parse_start_at("2026-11-23T06:00:00Z").unwrap();
        assert_eq!(
            at,
            StartAt::At(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_413_600))
        );
        let e = parse_start_at("tomorrow").unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("now"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn a_start_time_parses_or_is_refused_never_a_panic(
            s in prop_oneof![
                "\\PC{0,32}",
                "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}[T ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?",
            ]
        ) {
            let _ = parse_start_at(&s);
        }

        #[test]
        fn an_onu_set_parsed_is_what_it_says(
            s in prop_oneof![
                "\\PC{0,40}",
                "([0-9]{1,3}/)?[0-9]{1,6}(-[0-9]{1,6})?@127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,6}",
                "[0-9-]{0,8}@[0-9.:]{0,24}",
            ]
        ) {
            if let Ok((pon, onus)) = parse_onus(&s) {
                prop_assert!((1..=PonPort::MAX).contains(&pon.0));
                prop_assert!(!onus.is_empty() && onus.len() <= usize::from(MAX_ONUS));
                for pair in onus.windows(2) {
                    prop_assert_eq!(pair[1].0.0, pair[0].0.0 + 1);
                    prop_assert_eq!(pair[1].1.port(), pair[0].1.port() + 1);
                }
                for (id, addr) in &onus {
                    prop_assert!(id.0 <= 65534);
                    prop_assert!(addr.ip().is_loopback() && addr.port() != 0);
                }
            }
        }
    }
}

//! The faults that wait for their moment (a time after the OLT starts, or an ONU's protocol
//! event) and carrying them out: a SIGKILL to an ONU, an ONU silent (SIGSTOP) for a while, the
//! OLT killed and started again, a rogue sender on the multicast group. Power cuts are not
//! here: the ONU cuts its own power at its named point (`onu run --fault`, see [`super::plan`]).

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::Result;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::{GemPort, WindowNo};
use onu::core::OnuEvent;

use super::picture::Happenings;
use super::processes::{OltProcess, Onus};
use crate::spec::{Fault, FaultKind, Trigger};

/// A fault waiting for its moment.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    /// Its place in the scenario's list (from 0).
    pub(super) index: usize,
    /// What it does.
    pub(super) kind: FaultKind,
    /// The ONUs it hits (for the OLT and the group: the ONU whose event triggers it).
    pub(super) targets: BTreeSet<u16>,
    /// When, after the OLT starts.
    at: Option<Duration>,
    /// Or at which event of a target.
    on: Option<Trigger>,
    /// How long a silent ONU stays silent.
    duration: Duration,
    /// Forged sections of a rogue sender.
    forged: u32,
    /// Corrupt frames of a rogue sender.
    corrupt: u32,
    /// The targets it has already hit at their event.
    done: BTreeSet<u16>,
    /// It is spent.
    fired: bool,
}

impl Pending {
    /// Fault `index` of the scenario, `f`, on `targets`.
    pub(super) fn new(index: usize, f: &Fault, targets: BTreeSet<u16>) -> Pending {
        Pending {
            index,
            kind: f.kind,
            targets,
            at: f.at(),
            on: f.on.clone(),
            duration: f.duration(),
            forged: f.forged,
            corrupt: f.corrupt,
            done: BTreeSet::new(),
            fired: false,
        }
    }

    /// Whether it waits for a window (the ONUs then log every window).
    pub(super) fn waits_for_a_window(&self) -> bool {
        matches!(self.on, Some(Trigger::Window(_)))
    }

    /// Whether it is due `elapsed` after the OLT started; it is then spent.
    pub(super) fn due_by_time(&mut self, elapsed: Duration) -> bool {
        if !self.fired && self.at.is_some_and(|at| elapsed >= at) {
            self.fired = true;
            return true;
        }
        false
    }

    /// Whether ONU `onu`'s `event` (its `boots`-th boot so far, this one counted) triggers
    /// it for that ONU. A fault on the OLT or the group is then spent; one on ONUs when it
    /// has hit every target.
    pub(super) fn due_by_event(&mut self, onu: u16, event: &OnuEvent, boots: u32) -> bool {
        let Some(on) = &self.on else { return false };
        if self.fired || !self.targets.contains(&onu) || self.done.contains(&onu) {
            return false;
        }
        if !matches_trigger(on, event, boots) {
            return false;
        }
        self.done.insert(onu);
        if matches!(self.kind, FaultKind::OltRestart | FaultKind::RogueSender)
            || self.done.len() == self.targets.len()
        {
            self.fired = true;
        }
        true
    }
}

/// Whether an ONU's event is the trigger (`boots`: the ONU's boots so far, this one counted).
fn matches_trigger(on: &Trigger, event: &OnuEvent, boots: u32) -> bool {
    match (on, event) {
        (Trigger::DownloadStarted, OnuEvent::DownloadStarted { .. })
        | (Trigger::ImageValid, OnuEvent::ImageValid { .. })
        | (Trigger::Activated, OnuEvent::Activated { .. })
        | (Trigger::Committed, OnuEvent::Committed { .. }) => true,
        (Trigger::Window(n), OnuEvent::WindowComplete { window }) => window.0 == *n,
        (Trigger::Booted, OnuEvent::Booted { .. }) => boots >= 2,
        _ => false,
    }
}

/// Carries out fault `f` on `targets` (or on the OLT, or the group) and notes it, `t` seconds
/// after the OLT started.
pub(super) async fn apply(
    f: &Pending,
    targets: &[u16],
    onus: &mut Onus,
    olt: &mut OltProcess,
    group: SocketAddrV4,
    t: f64,
    notes: &mut Happenings,
) -> Result<()> {
    match f.kind {
        FaultKind::Sigkill => {
            for id in targets {
                if onus.kill(*id) {
                    notes.note(
                        t,
                        Some(*id),
                        format!("fault {}: SIGKILL to ONU {id}", f.index + 1),
                    );
                }
            }
        }
        FaultKind::Silent => {
            for id in targets {
                if onus.silence(*id, f.duration) {
                    notes.note(
                        t,
                        Some(*id),
                        format!(
                            "fault {}: ONU {id} silent (SIGSTOP) for {:.1} s",
                            f.index + 1,
                            f.duration.as_secs_f64()
                        ),
                    );
                }
            }
        }
        FaultKind::OltRestart => {
            olt.kill().await;
            notes.note(
                t,
                None,
                format!(
                    "fault {}: the OLT killed (SIGKILL) and started again",
                    f.index + 1
                ),
            );
            olt.start()?;
        }
        FaultKind::RogueSender => {
            let sent = rogue(group, f.forged, f.corrupt, f.index as u64)?;
            notes.note(
                t,
                None,
                format!(
                    "fault {}: a rogue sender put {sent} forged or corrupt Download sections on the group",
                    f.index + 1
                ),
            );
        }
        FaultKind::PowerLoss => {}
    }
    Ok(())
}

/// Sends `forged` well-formed Download sections with wrong data (and AR sections whose window
/// CRC matches the wrong data) and `corrupt` frames with a bad CRC to the multicast group, from
/// another socket than the OLT's.
fn rogue(group: SocketAddrV4, forged: u32, corrupt: u32, seed: u64) -> Result<u32> {
    use omci_codec::contents::{Contents, DownloadSectionRequest};
    use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, Tci};
    let sock =
        pon::transport::bind_multicast_sender(SocketAddrV4::new(pon::transport::LOOPBACK, 0))?;
    let codec = Codec::new(ExtendedTrailer::Crc32);
    let mut sent = 0;
    for i in 0..forged.saturating_add(corrupt) {
        let window = (i / 4) % 8;
        let section = (i % 4) as u8;
        let data = vec![(seed as u8) ^ (i as u8) ^ 0xA5; 31];
        let msg = Message::new(
            Tci(0x4000 + (i as u16 % 0x3FFF)),
            Format::Baseline,
            MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(i % 2 == 0)),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: section,
                data: std::borrow::Cow::Owned(data.clone()),
            }),
        )
        .with_ar(section == 3);
        let mut frame = codec.to_vec(&msg)?;
        if i >= forged {
            let last = frame.len() - 1;
            frame[last] ^= 0xFF; // a bad CRC
        }
        let envelope = Envelope {
            onu_id: ALL_ONUS,
            gem_port: GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(WindowNo(window)),
            window_crc: (section == 3).then(|| omci_codec::crc::crc32_bzip2(&data)),
            missing: None,
        };
        sock.send_to(&envelope.wrap(&frame), group)?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    fn pending(kind: &str, onus: &str, on: &str) -> Pending {
        let s = parse(&format!(
            "name = \"t\"\n[topology]\nonus = 4\n[image]\nversion = \"V2.0\"\n\
             [[faults]]\nkind = \"{kind}\"\nonus = \"{onus}\"\n{on}\n"
        ))
        .unwrap();
        Pending::new(
            0,
            &s.faults[0],
            s.faults[0].onus.as_ref().unwrap().resolve(4),
        )
    }

    fn window(n: u32) -> OnuEvent {
        OnuEvent::WindowComplete {
            window: WindowNo(n),
        }
    }

    #[test]
    fn an_event_fault_hits_each_target_once_at_its_event() {
        let mut f = pending("sigkill", "1-2", "on = \"window:3\"");
        assert!(!f.due_by_event(1, &window(2), 1));
        assert!(!f.due_by_event(3, &window(3), 1), "not a target");
        assert!(f.due_by_event(1, &window(3), 1));
        assert!(!f.due_by_event(1, &window(3), 1), "once per ONU");
        assert!(!f.fired);
        assert!(f.due_by_event(2, &window(3), 1));
        assert!(f.fired, "every target hit");
        assert!(!f.due_by_time(Duration::from_secs(100)));
    }

    #[test]
    fn booted_means_a_boot_after_the_first_and_a_time_fault_fires_once() {
        let mut f = pending("sigkill", "1", "on = \"booted\"");
        let booted = OnuEvent::Booted {
            running: 0,
            version: "V1.0".into(),
            path: Vec::new(),
        };
        assert!(!f.due_by_event(1, &booted, 1));
        assert!(f.due_by_event(1, &booted, 2));
        let mut t = pending("silent", "1", "at_s = 1.5\nduration_s = 2.0");
        assert!(!t.due_by_time(Duration::from_millis(1400)));
        assert!(t.due_by_time(Duration::from_millis(1500)));
        assert!(!t.due_by_time(Duration::from_millis(1600)));
        assert_eq!(t.duration, Duration::from_secs(2));
    }

    #[test]
    fn an_olt_fault_is_spent_at_its_first_event() {
        let mut f = pending("olt-restart", "1-2", "on = \"activated\"");
        let activated = OnuEvent::Activated { slot: 1 };
        assert!(f.due_by_event(1, &activated, 1));
        assert!(!f.due_by_event(2, &activated, 1));
    }
}

//! How a session behaves: timeouts, retries, budgets and sizes, and the rules broken on
//! purpose.

use std::time::Duration;

use omci_codec::Format;

/// Which stages of an upgrade a session carries out, as operators run them (voltctl's
/// `download`, `activate`, `commit`): a rollout does all three; `olt download` only the first
/// (with `--activate-on-success` the second too), `olt activate` the second (with
/// `--commit-on-success` the third), `olt commit` the third.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stages {
    /// Download the image into the standby image (when it is not there, valid, already).
    pub download: bool,
    /// Activate it (the ONU reboots into it).
    pub activate: bool,
    /// Commit it.
    pub commit: bool,
}

impl Stages {
    /// Download, activate and commit.
    pub const ALL: Stages = Stages {
        download: true,
        activate: true,
        commit: true,
    };

    /// The verb of the first stage, for reasons ("nothing to activate").
    pub fn verb(&self) -> &'static str {
        if self.download {
            "download"
        } else if self.activate {
            "activate"
        } else {
            "commit"
        }
    }
}

/// Timeouts, retries, budgets and sizes of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// How long to wait for a response.
    pub timeout: Duration,
    /// Retransmissions of a request before the session fails.
    pub retries: u8,
    /// The window proposed at Start (1..=256 sections).
    pub window_size: u16,
    /// Times one window may be sent again before the session fails.
    pub window_retries: u16,
    /// Pause before asking End again after "device busy".
    pub busy_interval: Duration,
    /// "Device busy" answers accepted before the session fails.
    pub max_busy: u32,
    /// How long the ONU may take to come back after Activate.
    pub reboot_timeout: Duration,
    /// How often the ONU is asked whether it is back.
    pub reboot_poll: Duration,
    /// Times the session may start again because the ONU rebooted and lost its download (or
    /// its activated image) before the session gives up on it.
    pub max_restarts: u32,
    /// Baseline or extended messages.
    pub format: Format,
    /// Data bytes per section on extended frames (baseline sections are 31).
    pub extended_section_len: usize,
    /// The campaign's health gate: once the ONU is back, active on the new version (and still
    /// so after `health_settle`), the session holds before Commit until the campaign says
    /// [`Session::commit`](super::Session::commit) or [`Session::halt`](super::Session::halt).
    pub hold_before_commit: bool,
    /// After the ONU is back on the new image, ask again after this long: an image that falls
    /// back (or reboots) shortly after booting fails the health gate. Zero: no second look.
    pub health_settle: Duration,
    /// Activate software's flags (G.988 9.1.4): 0 unconditionally, 1 unless a voice call is in
    /// progress, 2 unless an emergency call is; the ONU answers "device busy" to defer.
    pub activate_flags: u8,
    /// How long a deferred activation is asked again before the session gives up.
    pub activate_defer: Duration,
    /// Unicast mode: put the window number and CRC in the transport envelope (this lab's
    /// extension, which lets the ONU check each window). False: strictly G.988, as open OLT
    /// stacks send it; the multicast mode always needs them.
    pub envelope_extensions: bool,
    /// Rules broken on purpose (`olt rollout --quirk`), so that the ONU's OLT checker can be
    /// seen to catch them. None by default.
    pub quirks: OltQuirks,
    /// Which stages the session carries out.
    pub stages: Stages,
    /// Where each session's transaction identifiers start (the named ranges of `olt/src/tci.rs`): the driver
    /// draws it at random, so that answers forged with guessed TCIs are unlikely to match;
    /// tests fix it.
    pub tci_seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            retries: 2,
            window_size: 32,
            window_retries: 8,
            busy_interval: Duration::from_millis(200),
            max_busy: 300,
            reboot_timeout: Duration::from_secs(60),
            reboot_poll: Duration::from_millis(500),
            max_restarts: 4,
            format: Format::Baseline,
            extended_section_len: 1965,
            hold_before_commit: false,
            health_settle: Duration::ZERO,
            envelope_extensions: true,
            activate_flags: 0,
            activate_defer: Duration::from_secs(60),
            quirks: OltQuirks::default(),
            stages: Stages::ALL,
            tci_seed: 0,
        }
    }
}

/// Faults of weaker OLTs, each a rule of G.988 broken on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OltQuirks {
    /// AR set on every Download section, not only on each window's last.
    pub ar_on_every_section: bool,
    /// End software download with a CRC that does not match the image.
    pub wrong_end_crc: bool,
    /// Take "device busy" at End as success and go on.
    pub no_busy_retry: bool,
}

impl OltQuirks {
    /// The names `olt rollout --quirk` takes.
    pub const NAMES: [&'static str; 3] = ["ar-on-every-section", "wrong-end-crc", "no-busy-retry"];

    /// Turns on the quirk called `name`; false for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "ar-on-every-section" => self.ar_on_every_section = true,
            "wrong-end-crc" => self.wrong_end_crc = true,
            "no-busy-retry" => self.no_busy_retry = true,
            _ => return false,
        }
        true
    }
}

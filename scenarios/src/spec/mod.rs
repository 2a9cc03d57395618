//! The scenario file: what a rehearsal sets up, breaks and expects, in TOML.
//!
//! ```toml
//! name = "lossy-pon"
//! description = "32 ONUs, 5 % loss, duplication and reordering on the multicast path."
//!
//! [topology]
//! onus = 32                # 1..=128
//! version = "V1.0"         # what every ONU runs at the start
//!
//! [[topology.groups]]      # ONUs that differ (ranges "1-4,7", "all")
//! onus = "1-4"
//! link = { drop = 0.05, duplicate = 0.02, reorder = 0.02, on = "multicast" }
//!
//! [image]
//! version = "V2.0"
//! size = 65536
//!
//! [olt]
//! mode = "multicast"
//!
//! [[faults]]
//! kind = "sigkill"
//! onus = "5"
//! on = "window:3"
//!
//! [[expect.onus]]
//! onus = "all"
//! result = "upgraded"
//! committed = "V2.0"
//! ```
//!
//! Every table refuses keys it does not know, and every value is checked as it is read against
//! its range (`spec/values.rs`: the ranges of the `olt` and `onu` command lines where a value is
//! passed on to them), so a mistake is reported with the file, the line and the key, and the
//! allowed values; a file that parses gives the runner nothing it cannot carry out.

mod check;
mod fleet;
mod values;

pub use check::{SpecError, load, parse};
pub use fleet::{
    Count, FleetCampaign, FleetExpect, FleetFault, FleetFaultKind, FleetSpec, FleetTrigger, WaveEnd,
};

pub use values::{
    AT_S, DURATION_S, EXPECTED_ONUS, GROUP_DOWNLOADS, IMAGE_SIZE, PONS, ROGUE_FRAMES, Reals,
    SECURITY_VERSION, START_IN_S, TIME_LIMIT_S, WINDOW_S,
};

use std::collections::BTreeSet;
use std::time::Duration;

use olt::report::{CampaignOutcome, OnuResult};
use serde::Deserialize;

/// How the windows travel (`mode = "..."`), the OLT's own definition.
pub use olt::engine::Mode;
/// The named power-loss points (`point = "..."`), the ONU's own definition.
pub use onu::faults::FaultPoint;
/// Where a link's downstream faults apply (`on = "..."`), the shared crate's definition.
pub use pon::link::Paths;

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (the file's stem by convention).
    pub name: String,
    /// What it rehearses, for the summary.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (fault targets, link faults).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The ONUs.
    pub topology: Topology,
    /// The new image.
    pub image: ImageSpec,
    /// The OLT.
    #[serde(default)]
    pub olt: OltSpec,
    /// Where an ONU in recovery mode fetches its golden image, and which ONUs start in it.
    #[serde(default)]
    pub golden: GoldenSpec,
    /// What goes wrong, and when.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Expect,
    /// How long the rollout may take, from the OLT's start to its end, before it is stopped and
    /// failed (s, 1..=86400; the ONUs' boot before it and the flash read after it are not
    /// counted).
    #[serde(default = "default_limit", deserialize_with = "read::time_limit_s")]
    pub time_limit_s: u64,
    /// Narrate ONU 1's upgrade in the summary (as `--explain` does).
    #[serde(default)]
    pub explain: bool,
    /// Print a Mermaid sequence diagram in the summary (`--mermaid FILE` writes it instead).
    #[serde(default)]
    pub diagram: bool,
    /// A fleet scenario: many OLTs, a fleet service, one campaign across them (`spec::fleet`).
    #[serde(default)]
    pub fleet: Option<FleetSpec>,
}

fn default_seed() -> u64 {
    1
}

fn default_limit() -> u64 {
    300
}

/// The ONUs of the PON.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// How many on each PON port (ONU-IDs 1..=onus on each).
    pub onus: OnuCount,
    /// PON ports of the OLT (1..=16), each a tree of `onus` ONUs with its own multicast group.
    /// ONUs are numbered across the ports in the rest of the file: port 2's first ONU is ONU
    /// `onus + 1`.
    #[serde(default = "default_pons", deserialize_with = "read::pons")]
    pub pons: u8,
    /// Their model (ONU2-G equipment ID, and the model images are built for; 1 to 32 bytes).
    #[serde(default = "default_model", deserialize_with = "read::model")]
    pub model: String,
    /// The version every ONU runs at the start (its factory image; 1 to 14 bytes).
    #[serde(default = "default_version", deserialize_with = "read::version")]
    pub version: String,
    /// How long End software download answers "device busy" while the flash is written (ms,
    /// 0..=60000).
    #[serde(default = "default_busy", deserialize_with = "read::busy_ms")]
    pub busy_ms: u64,
    /// How long a reboot takes (ms, 0..=60000).
    #[serde(default = "default_reboot", deserialize_with = "read::reboot_ms")]
    pub reboot_ms: u64,
    /// Every ONU makes each window durable (fsync) before acknowledging it (`onu run
    /// --sync-every-window`), not only the whole image before End records it valid.
    #[serde(default)]
    pub sync_every_window: bool,
    /// ONUs that differ from the above.
    #[serde(default)]
    pub groups: Vec<OnuGroup>,
}

fn default_pons() -> u8 {
    1
}

fn default_model() -> String {
    "LAB-ONU-1".into()
}

fn default_version() -> String {
    "V1.0".into()
}

fn default_busy() -> u64 {
    200
}

fn default_reboot() -> u64 {
    200
}

/// ONUs that differ from the topology's defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnuGroup {
    /// Which ONUs.
    pub onus: OnuSet,
    /// Another model.
    #[serde(default, deserialize_with = "read::group_model")]
    pub model: Option<String>,
    /// Another starting version.
    #[serde(default, deserialize_with = "read::group_version")]
    pub version: Option<String>,
    /// Another busy time (ms).
    #[serde(default, deserialize_with = "read::group_busy_ms")]
    pub busy_ms: Option<u64>,
    /// A voice call is in progress (Activate with flag 1 answers busy).
    #[serde(default)]
    pub voice_call: bool,
    /// The largest window these ONUs accept (1..=256, as `onu run --max-window`).
    #[serde(default, deserialize_with = "read::max_window")]
    pub max_window: Option<u16>,
    /// Faults of their links for the whole run.
    pub link: Option<LinkSpec>,
}

/// Link fault rates (each 0.0..=1.0, per datagram).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Downstream loss.
    #[serde(default)]
    pub drop: Rate,
    /// Downstream duplication.
    #[serde(default)]
    pub duplicate: Rate,
    /// Downstream reordering.
    #[serde(default)]
    pub reorder: Rate,
    /// Downstream corruption (one bit flipped).
    #[serde(default)]
    pub corrupt: Rate,
    /// Upstream loss.
    #[serde(default)]
    pub drop_upstream: Rate,
    /// Which downstream path the downstream faults apply to: `both` (default), `unicast` or
    /// `multicast`.
    #[serde(default)]
    pub on: Paths,
}

/// The golden (factory) image: where ONUs in recovery mode fetch it (docs/onu.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenSpec {
    /// `file` (each ONU reads its own golden file: the default), `embedded` (a TFTP server the
    /// runner starts in its own process) or `tftpd-hpa` (Debian's `in.tftpd`, started by the
    /// runner on loopback; the run stops with a clear line when it is not installed).
    #[serde(default)]
    pub server: GoldenServer,
    /// The server's golden image has one byte changed after signing.
    #[serde(default)]
    pub tampered: bool,
    /// These ONUs start from a flash that a power cut wrecked: both slots and both metadata
    /// copies garbled. They boot into recovery mode. The others start with their golden
    /// image installed, as from the factory.
    pub wrecked: Option<OnuSet>,
}

/// Where the golden image is served from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GoldenServer {
    /// A local file per ONU (`onu run --golden FILE`).
    #[default]
    File,
    /// The runner's embedded TFTP server (`pon::tftp::TftpServer`).
    Embedded,
    /// Debian's `in.tftpd` (tftpd-hpa).
    TftpdHpa,
}

/// The image rolled out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Its version (1 to 14 bytes: the Software image ME's version attribute).
    #[serde(deserialize_with = "read::image_version")]
    pub version: String,
    /// Payload bytes (built on the fly; 1 to [`pon::firmware::MAX_PAYLOAD_LEN`], so that the
    /// image fits the ONU's 64 MiB slot and G.988's 32-bit image size).
    #[serde(default = "default_size", deserialize_with = "read::size")]
    pub size: usize,
    /// The model it is for (default: the topology's).
    #[serde(default, deserialize_with = "read::image_model")]
    pub model: Option<String>,
    /// Its anti-rollback (security) version.
    #[serde(
        default = "default_security",
        deserialize_with = "read::security_version"
    )]
    pub security_version: u32,
    /// A test image that fails to boot.
    #[serde(default)]
    pub fails_to_boot: bool,
    /// Flip one payload byte after signing (the ONUs must refuse it).
    #[serde(default)]
    pub tampered: bool,
    /// Signed with another key than the ONUs trust.
    #[serde(default)]
    pub foreign_key: bool,
    /// The security version of the ONUs' starting image (default 1): an image below it is a
    /// downgrade once that image is committed.
    #[serde(
        default = "default_security",
        deserialize_with = "read::installed_security_version"
    )]
    pub installed_security_version: u32,
    /// The canary share in the manifest (percent, 0..=100).
    #[serde(default, deserialize_with = "read::rollout_percent")]
    pub rollout_percent: u8,
    /// Base versions that get a delta package to this image (`olt rollout --delta`), each a
    /// version some ONUs start on. With deltas the image is derived from the first base's
    /// golden image (3 % changed, 1 % inserted, 5 % moved; `size` is then the golden's).
    #[serde(default)]
    pub deltas: Vec<String>,
    /// Spoil every delta package on purpose: `tampered` (a patch byte flipped after signing)
    /// or `wrong-base` (made from an image of the base's version with other bytes).
    #[serde(default)]
    pub delta_fault: Option<DeltaFault>,
}

/// How a scenario spoils its delta packages.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaFault {
    /// One byte of the patch flipped after signing: the package's signature fails.
    Tampered,
    /// Made from an image of the base's version but other bytes: the base's SHA-256 differs.
    WrongBase,
}

fn default_size() -> usize {
    64 * 1024
}

fn default_security() -> u32 {
    1
}

/// The OLT's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OltSpec {
    /// How the windows travel.
    #[serde(default)]
    pub mode: Mode,
    /// Sections per window proposed at Start (1..=256).
    #[serde(default = "default_window", deserialize_with = "read::window")]
    pub window: u16,
    /// Response timeout (ms, 1..=600000).
    #[serde(default = "default_timeout", deserialize_with = "read::timeout_ms")]
    pub timeout_ms: u64,
    /// Retransmissions per request (0..=50).
    #[serde(default = "default_retries", deserialize_with = "read::retries")]
    pub retries: u8,
    /// Strictly G.988 on the wire (unicast only).
    #[serde(default)]
    pub strict: bool,
    /// Extended OMCI messages: sections of 1965 bytes instead of 31.
    #[serde(default)]
    pub extended: bool,
    /// Try again the ONUs the journal (kept in the working directory) records as failed:
    /// `olt rollout --retry-failed`, the operator's retry after a transient fault.
    #[serde(default)]
    pub retry_failed: bool,
    /// When the ONUs get their base's delta (`image.deltas`): `per-base` (the default) or
    /// `when-saving` (`olt rollout --delta-policy`).
    #[serde(default)]
    pub delta_policy: olt::campaign::DeltaPolicy,
    /// Activate software's flags: 0 unconditionally, 1 unless a voice call is in progress, 2
    /// unless an emergency call is.
    #[serde(default, deserialize_with = "read::activate_flags")]
    pub activate_flags: u8,
    /// How long a deferred activation is asked again (s, 1..=86400).
    #[serde(default = "default_defer", deserialize_with = "read::activate_defer_s")]
    pub activate_defer_s: u64,
    /// Run as a campaign (manifest, model check, waves, health gate, kill switch, journal).
    pub campaign: Option<CampaignSpec>,
    /// A staged upgrade, as operators run one: the OLT's commands in order (`download`, then
    /// `activate` in a maintenance window, then `commit`), each a process of its own that
    /// starts when the previous one has ended. None: one `olt rollout`.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// One command of a staged upgrade.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The OLT's command.
    pub verb: Verb,
    /// `download`: activate too, once downloaded.
    #[serde(default)]
    pub activate_on_success: bool,
    /// `download` or `activate`: commit too, once activated.
    #[serde(default)]
    pub commit_on_success: bool,
    /// Seconds after the previous step ended (0..=86400): the wait for the maintenance window.
    #[serde(default, deserialize_with = "read::after_s")]
    pub after_s: Option<f64>,
    /// `activate`: how long the maintenance window stays open (s, 0.001..=86400): activations
    /// the ONUs defer (a call in progress) are asked again until it closes (`olt activate
    /// --until`). None: as `olt.activate_defer_s` says.
    #[serde(default, deserialize_with = "read::window_s")]
    pub window_s: Option<f64>,
}

/// An OLT command of a staged upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    /// Download, activate and commit.
    Rollout,
    /// Download only (into the standby image).
    Download,
    /// Activate what was downloaded.
    Activate,
    /// Commit what was activated.
    Commit,
}

impl Verb {
    /// The `olt` subcommand.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Rollout => "rollout",
            Verb::Download => "download",
            Verb::Activate => "activate",
            Verb::Commit => "commit",
        }
    }
}

impl Default for OltSpec {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            window: default_window(),
            timeout_ms: default_timeout(),
            retries: default_retries(),
            strict: false,
            extended: false,
            retry_failed: false,
            delta_policy: olt::campaign::DeltaPolicy::PerBase,
            activate_flags: 0,
            activate_defer_s: default_defer(),
            campaign: None,
            steps: Vec::new(),
        }
    }
}

fn default_defer() -> u64 {
    10
}

fn default_window() -> u16 {
    32
}

fn default_timeout() -> u64 {
    500
}

fn default_retries() -> u8 {
    8
}

/// A campaign's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// The canary share (percent, 0..=100; default: the image's rollout percent).
    #[serde(default, deserialize_with = "read::canary")]
    pub canary: Option<u8>,
    /// The kill switch: halt when more than this percent of a wave fails (0..=100).
    #[serde(default = "default_kill", deserialize_with = "read::kill_threshold")]
    pub kill_threshold: u8,
    /// The health gate's second look (ms, 0..=3600000).
    #[serde(
        default = "default_settle",
        deserialize_with = "read::health_settle_ms"
    )]
    pub health_settle_ms: u64,
    /// At most this many sections per second (1 or more).
    #[serde(default, deserialize_with = "read::pace")]
    pub pace: Option<u32>,
    /// Start this many seconds after the OLT is launched (the manifest's rollout start; 0 to
    /// 86400, and before `time_limit_s`).
    #[serde(default, deserialize_with = "read::start_in_s")]
    pub start_in_s: Option<u64>,
}

fn default_kill() -> u8 {
    20
}

fn default_settle() -> u64 {
    500
}

/// One fault.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// On which PON port: its `onus` (or `share`) are then that port's ONU-IDs. None: ONUs by
    /// their numbers across every port.
    #[serde(default, deserialize_with = "read::fault_pon")]
    pub pon: Option<u8>,
    /// To which ONUs (not for `olt-restart` and `rogue-sender`).
    pub onus: Option<OnuSet>,
    /// Or to this share of the ONUs, chosen with the scenario's seed (0.0..=1.0).
    pub share: Option<Rate>,
    /// When: this many seconds after the OLT starts (0..=86400, and before `time_limit_s`)...
    #[serde(default, deserialize_with = "read::at_s")]
    pub at_s: Option<f64>,
    /// ...or at this event of the ONU (of the first ONU of the set, for `olt-restart` and
    /// `rogue-sender`): `download-started`, `window:N`, `image-valid`, `activated`,
    /// `committed`, `booted`.
    pub on: Option<Trigger>,
    /// `power-loss`: the named point of the ONU's code where the power fails.
    pub point: Option<FaultPoint>,
    /// `power-loss`: its N-th time (default 1; 1 or more, as `onu run --fault POINT@N`).
    #[serde(default, deserialize_with = "read::occurrence")]
    pub occurrence: Option<u32>,
    /// `silent`: for how long (s, 0.001..=3600).
    #[serde(default, deserialize_with = "read::duration_s")]
    pub duration_s: Option<f64>,
    /// `rogue-sender`: how many forged sections (valid frames, wrong data) to send (0..=100000).
    #[serde(default, deserialize_with = "read::forged")]
    pub forged: u32,
    /// `rogue-sender`: how many corrupt frames (bad CRC) to send (0..=100000).
    #[serde(default, deserialize_with = "read::corrupt")]
    pub corrupt: u32,
}

impl Fault {
    /// When it happens after the OLT's start, if it waits for a time.
    pub fn at(&self) -> Option<Duration> {
        // In range by the reader (0 to 86400 s): never a panic, never a wrap.
        self.at_s.and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// How long a silent ONU stays silent (1 s unless the file says).
    pub fn duration(&self) -> Duration {
        self.duration_s
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs(1))
    }
}

/// The kinds of fault.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The ONU loses power at a named point of its code (then comes back).
    PowerLoss,
    /// The ONU process is killed (SIGKILL), then started again from its flash.
    Sigkill,
    /// The ONU stops answering for `duration_s` (SIGSTOP, then SIGCONT).
    Silent,
    /// The OLT is killed (SIGKILL) and started again; a campaign resumes from its journal.
    OltRestart,
    /// Another sender injects forged and corrupt Download sections into the multicast group.
    RogueSender,
}

/// A protocol event of an ONU, as its log reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Start software download accepted.
    DownloadStarted,
    /// Window N acknowledged.
    Window(u32),
    /// End software download found the image valid.
    ImageValid,
    /// Activate accepted.
    Activated,
    /// Commit accepted.
    Committed,
    /// The ONU booted (any boot after the first).
    Booted,
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "{s:?} is not an event; expected one of download-started, window:N, image-valid, \
                 activated, committed, booted"
            ))
        };
        Ok(match s.as_str() {
            "download-started" => Trigger::DownloadStarted,
            "image-valid" => Trigger::ImageValid,
            "activated" => Trigger::Activated,
            "committed" => Trigger::Committed,
            "booted" => Trigger::Booted,
            other => match other.strip_prefix("window:").map(str::parse) {
                Some(Ok(n)) => Trigger::Window(n),
                _ => return Err(bad()),
            },
        })
    }
}

/// What must hold at the end.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// ONUs upgraded (committed and active on the new version), when given (0..=128).
    #[serde(default, deserialize_with = "read::upgraded")]
    pub upgraded: Option<u32>,
    /// ONUs failed.
    #[serde(default, deserialize_with = "read::failed")]
    pub failed: Option<u32>,
    /// ONUs skipped (already on the version).
    #[serde(default, deserialize_with = "read::skipped")]
    pub skipped: Option<u32>,
    /// ONUs refused (another model).
    #[serde(default, deserialize_with = "read::refused")]
    pub refused: Option<u32>,
    /// The campaign's outcome: `completed` or `halted`.
    pub outcome: Option<Outcome>,
    /// At most this many frames on the multicast group, in units of one download (0..=1000).
    #[serde(default, deserialize_with = "read::max_group_downloads")]
    pub max_group_downloads: Option<f64>,
    /// Per ONU set: result and final versions. The ONUs no entry names must be upgraded.
    #[serde(default)]
    pub onus: Vec<OnuExpect>,
    /// These ONUs must end in recovery mode: their flash boots nothing, and they wait for a
    /// golden image that passes every check (every other ONU must boot).
    pub in_recovery: Option<OnuSet>,
    /// ONUs that refused their delta package and were sent the full image after it.
    pub fell_back: Option<u32>,
    /// ONUs that were sent a delta package (and kept it: not fallen back).
    pub delta_onus: Option<u32>,
}

/// How a campaign ends.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every wave ran.
    Completed,
    /// The kill switch (or an abort) stopped it.
    Halted,
}

impl Outcome {
    /// The OLT's campaign outcome it expects.
    pub fn campaign(self) -> CampaignOutcome {
        match self {
            Outcome::Completed => CampaignOutcome::Completed,
            Outcome::Halted => CampaignOutcome::Halted,
        }
    }
}

/// What must hold for a set of ONUs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnuExpect {
    /// Which ONUs ("rest": every ONU no earlier entry names).
    pub onus: OnuSet,
    /// The OLT's result for each: one of `upgraded`, `skipped`, `refused`, `failed`,
    /// `halted`, `untouched`, or `any`.
    #[serde(default)]
    pub result: ResultExpect,
    /// The version its flash has committed at the end (read with `onu status`).
    #[serde(default, deserialize_with = "read::expect_committed")]
    pub committed: Option<String>,
    /// The version it runs at the end.
    #[serde(default, deserialize_with = "read::expect_active")]
    pub active: Option<String>,
}

/// The OLT's result for an ONU.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ResultExpect {
    /// Any result.
    #[default]
    Any,
    /// Committed and active on the new version.
    Upgraded,
    /// Already on the version.
    Skipped,
    /// Another model.
    Refused,
    /// The upgrade failed.
    Failed,
    /// Stopped by the kill switch or an abort.
    Halted,
    /// Its wave never started.
    Untouched,
}

impl ResultExpect {
    /// The OLT's result it expects, or None for `any`.
    pub fn result(self) -> Option<OnuResult> {
        match self {
            ResultExpect::Any => None,
            ResultExpect::Upgraded => Some(OnuResult::Upgraded),
            ResultExpect::Skipped => Some(OnuResult::Skipped),
            ResultExpect::Refused => Some(OnuResult::Refused),
            ResultExpect::Failed => Some(OnuResult::Failed),
            ResultExpect::Halted => Some(OnuResult::Halted),
            ResultExpect::Untouched => Some(OnuResult::Untouched),
        }
    }
}

/// The number of ONUs: 1..=128.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "i64")]
pub struct OnuCount(pub u16);

impl TryFrom<i64> for OnuCount {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        let per_pon = pon::limits::ONUS_PER_PON;
        match u16::try_from(n) {
            Ok(n) if per_pon.contains(u64::from(n)) => Ok(OnuCount(n)),
            _ => Err(format!(
                "topology.onus = {n} is out of range: a PON here has {per_pon}"
            )),
        }
    }
}

/// A probability: 0.0..=1.0.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(try_from = "f64")]
pub struct Rate(pub f64);

impl TryFrom<f64> for Rate {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Rate(v))
        } else {
            Err(format!("{v} is not a share: give 0.0 to 1.0"))
        }
    }
}

/// The reader of each bounded key (see [`values`]), named in its `deserialize_with`.
mod read {
    use super::values::*;
    use olt::limits as olt;
    use pon::limits as pon;

    whole!(time_limit_s: u64 = "time_limit_s" in TIME_LIMIT_S);
    whole!(pons: u8 = "topology.pons" in PONS);
    whole!(option fault_pon: u8 = "faults.pon" in PONS);
    seconds!(after_s = "olt.steps.after_s" in AT_S);
    seconds!(window_s = "olt.steps.window_s" in WINDOW_S);
    text!(model = "topology.model", MODEL_LEN);
    text!(version = "topology.version", VERSION_LEN);
    whole!(busy_ms: u64 = "topology.busy_ms" in pon::BUSY_MS);
    whole!(reboot_ms: u64 = "topology.reboot_ms" in pon::REBOOT_MS);
    text!(option group_model = "topology.groups.model", MODEL_LEN);
    text!(option group_version = "topology.groups.version", VERSION_LEN);
    whole!(option group_busy_ms: u64 = "topology.groups.busy_ms" in pon::BUSY_MS);
    whole!(option max_window: u16 = "topology.groups.max_window" in pon::WINDOW);
    text!(image_version = "image.version", VERSION_LEN);
    whole!(size: usize = "image.size" in IMAGE_SIZE);
    text!(option image_model = "image.model", MODEL_LEN);
    whole!(security_version: u32 = "image.security_version" in SECURITY_VERSION);
    whole!(
        installed_security_version: u32 = "image.installed_security_version" in SECURITY_VERSION
    );
    whole!(rollout_percent: u8 = "image.rollout_percent" in pon::PERCENT);
    whole!(window: u16 = "olt.window" in olt::WINDOW);
    whole!(timeout_ms: u64 = "olt.timeout_ms" in olt::TIMEOUT_MS);
    whole!(retries: u8 = "olt.retries" in olt::RETRIES);
    whole!(activate_flags: u8 = "olt.activate_flags" in olt::ACTIVATE_FLAGS);
    whole!(activate_defer_s: u64 = "olt.activate_defer_s" in olt::ACTIVATE_DEFER_S);
    whole!(option canary: u8 = "olt.campaign.canary" in olt::CANARY);
    whole!(kill_threshold: u8 = "olt.campaign.kill_threshold" in olt::KILL_THRESHOLD);
    whole!(health_settle_ms: u64 = "olt.campaign.health_settle_ms" in olt::HEALTH_SETTLE_MS);
    whole!(option pace: u32 = "olt.campaign.pace" in olt::PACE);
    whole!(option start_in_s: u64 = "olt.campaign.start_in_s" in START_IN_S);
    seconds!(at_s = "faults.at_s" in AT_S);
    whole!(option occurrence: u32 = "faults.occurrence" in pon::OCCURRENCE);
    seconds!(duration_s = "faults.duration_s" in DURATION_S);
    whole!(forged: u32 = "faults.forged" in ROGUE_FRAMES);
    whole!(corrupt: u32 = "faults.corrupt" in ROGUE_FRAMES);
    whole!(option upgraded: u32 = "expect.upgraded" in EXPECTED_ONUS);
    whole!(option failed: u32 = "expect.failed" in EXPECTED_ONUS);
    whole!(option skipped: u32 = "expect.skipped" in EXPECTED_ONUS);
    whole!(option refused: u32 = "expect.refused" in EXPECTED_ONUS);
    seconds!(max_group_downloads = "expect.max_group_downloads" in GROUP_DOWNLOADS);
    text!(option expect_committed = "expect.onus.committed", VERSION_LEN);
    text!(option expect_active = "expect.onus.active", VERSION_LEN);
}

/// A set of ONU-IDs: `"all"`, `"rest"`, or ranges and IDs like `"1-4,7,9-12"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnuSet {
    /// Every ONU.
    All,
    /// Every ONU no earlier expectation names.
    Rest,
    /// These IDs.
    Ids(BTreeSet<u16>),
}

impl OnuSet {
    /// The IDs of this set among ONUs 1..=`count` (`rest` resolves to nothing here).
    pub fn resolve(&self, count: u16) -> BTreeSet<u16> {
        match self {
            OnuSet::All => (1..=count).collect(),
            OnuSet::Rest => BTreeSet::new(),
            OnuSet::Ids(ids) => ids.iter().copied().filter(|i| *i <= count).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OnuSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::One(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        parse_set(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses `"all"`, `"rest"` or `"1-4,7"`.
pub fn parse_set(text: &str) -> Result<OnuSet, String> {
    match text.trim() {
        "all" => return Ok(OnuSet::All),
        "rest" => return Ok(OnuSet::Rest),
        _ => {}
    }
    let bad = || {
        format!(
            "{text:?} is not a set of ONUs: give \"all\", \"rest\" or IDs and ranges like \"1-4,7\" (IDs 1 to 128)"
        )
    };
    let id = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| pon::limits::ONUS_PER_PON.contains(u64::from(*n)))
    };
    let mut ids = BTreeSet::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (Some(a), Some(b)) = (id(a), id(b)) else {
                    return Err(bad());
                };
                if a > b {
                    return Err(bad());
                }
                ids.extend(a..=b);
            }
            None => {
                ids.insert(id(part).ok_or_else(bad)?);
            }
        }
    }
    Ok(OnuSet::Ids(ids))
}

/// A fault kind as the file writes it.
pub fn kind_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::PowerLoss => "power-loss",
        FaultKind::Sigkill => "sigkill",
        FaultKind::Silent => "silent",
        FaultKind::OltRestart => "olt-restart",
        FaultKind::RogueSender => "rogue-sender",
    }
}

#[cfg(test)]
pub(crate) mod tests;

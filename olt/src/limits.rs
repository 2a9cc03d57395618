//! The ranges of the OLT's settings, defined once: `olt rollout` checks its flags against them
//! and the scenario files their `[olt]` keys, so that a value one accepts the other never
//! refuses. The ranges the OLT shares with the ONUs (the window) are `pon::limits`.

pub use pon::limits::{Bounds, WINDOW};

/// How long the OLT waits for an answer before it sends a request again (ms).
pub const TIMEOUT_MS: Bounds = Bounds::new(1, 600_000, "ms");

/// How often a request is sent again before the ONU fails.
pub const RETRIES: Bounds = Bounds::new(0, 50, "retransmissions");

/// How long an ONU may take to come back after Activate (s).
pub const REBOOT_TIMEOUT_S: Bounds = Bounds::new(1, 3600, "s");

/// Activate software's flags (G.988 9.1.4): 0 unconditionally, 1 unless a voice call is in
/// progress, 2 unless an emergency call is.
pub const ACTIVATE_FLAGS: Bounds = Bounds::new(
    0,
    2,
    "(0 unconditionally, 1 unless a voice call, 2 unless an emergency call)",
);

/// How long a deferred activation is asked again before the ONU fails (s).
pub const ACTIVATE_DEFER_S: Bounds = Bounds::new(1, 86_400, "s");

/// The canary wave's share of the eligible ONUs (percent; 0: a single wave).
pub const CANARY: Bounds = pon::limits::PERCENT;

/// The kill switch: halt when more than this percent of a wave's ONUs fail.
pub const KILL_THRESHOLD: Bounds = pon::limits::PERCENT;

/// The health gate: how long an ONU must stay on the new image after its reboot (ms).
pub const HEALTH_SETTLE_MS: Bounds = Bounds::new(0, 3_600_000, "ms");

/// At most this many Download sections per second.
pub const PACE: Bounds = Bounds::new(1, u32::MAX as u64, "sections per second");

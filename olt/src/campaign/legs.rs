//! A wave's downloads ("legs"): which ONUs get which package (docs/multicast.md, "Per-base
//! grouping"), and the policy that says when the deltas are worth sending.

use omci_codec::OnuId;

use crate::engine::Mode;
use crate::image::UpgradeImage;

/// When a campaign's delta packages are sent (docs/multicast.md, "When deltas pay").
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaPolicy {
    /// Every ONU on a base with a delta gets it; the others get the full image.
    #[default]
    PerBase,
    /// Only where the deltas save bytes: in multicast, a wave that needs the full image for
    /// some of its ONUs sends it to all of them in one download (its deltas would only add to
    /// it), and so does a wave whose deltas add up to the full image's size or more; a wave
    /// whose ONUs all have a delta, smaller in sum, gets the deltas. In unicast, as
    /// `per-base`.
    WhenSaving,
}

impl DeltaPolicy {
    /// The word the command line and the scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            DeltaPolicy::PerBase => "per-base",
            DeltaPolicy::WhenSaving => "when-saving",
        }
    }
}

/// Which package of a campaign an ONU is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Package {
    /// The full image.
    Full,
    /// The delta package from this base version.
    Delta {
        /// The base version.
        base: String,
    },
}

impl Package {
    /// The words the report and the fleet use: `full`, `delta from V1.0`.
    pub fn words(&self) -> String {
        match self {
            Package::Full => "full".to_string(),
            Package::Delta { base } => format!("delta from {base}"),
        }
    }
}

/// One download of a wave: a package to a set of ONUs.
#[derive(Clone, Debug)]
pub(super) struct Leg {
    /// The delta's index in `deltas`, or None for the full image.
    pub(super) delta: Option<usize>,
    /// Its ONUs.
    pub(super) onus: Vec<OnuId>,
}

/// The legs of a wave of `ids`: first one per delta package whose base (`base_of`: the
/// version an ONU runs and commits, None when it is mid-upgrade) some ONUs are on, then one of
/// the full image (of `full_len` bytes) for the others, also when there is nothing else.
/// Under [`DeltaPolicy::WhenSaving`] in multicast, a wave that needs the full image, or whose
/// deltas add up to it, is one download of the full image for all its ONUs.
pub(super) fn plan<'a>(
    ids: Vec<OnuId>,
    base_of: impl Fn(OnuId) -> Option<&'a str>,
    deltas: &[UpgradeImage],
    full_len: u64,
    policy: DeltaPolicy,
    mode: Mode,
) -> Vec<Leg> {
    let mut full = Vec::new();
    let mut by_delta: Vec<Vec<OnuId>> = vec![Vec::new(); deltas.len()];
    for id in ids {
        let delta = base_of(id).and_then(|b| {
            deltas
                .iter()
                .position(|d| d.delta.as_ref().is_some_and(|h| h.base_version == b))
        });
        match delta {
            Some(i) => by_delta[i].push(id),
            None => full.push(id),
        }
    }
    let deltas_bytes: u64 = by_delta
        .iter()
        .zip(deltas)
        .filter(|(onus, _)| !onus.is_empty())
        .map(|(_, d)| d.len() as u64)
        .sum();
    if policy == DeltaPolicy::WhenSaving
        && mode != Mode::Unicast
        && (!full.is_empty() || deltas_bytes >= full_len)
        && !by_delta.iter().all(Vec::is_empty)
    {
        for onus in &mut by_delta {
            full.append(onus);
        }
        full.sort();
        tracing::info!(
            onus = full.len(),
            "the wave's deltas would not save bytes: the full image to all of its ONUs"
        );
    }
    let mut legs: Vec<Leg> = by_delta
        .into_iter()
        .enumerate()
        .filter(|(_, onus)| !onus.is_empty())
        .map(|(i, onus)| Leg {
            delta: Some(i),
            onus,
        })
        .collect();
    if !full.is_empty() || legs.is_empty() {
        legs.push(Leg {
            delta: None,
            onus: full,
        });
    }
    legs
}

//! The transaction identifiers this OLT uses.
//!
//! G.988 (clause 11.2.1) leaves the TCI's value to the OLT: the ONU copies it into its answer,
//! and the OLT matches the answer to its request by it. The most significant bit is the
//! priority bit; this OLT sends everything at low priority. It divides the rest:
//!
//! | TCIs | used for |
//! |---|---|
//! | `0x0000` | never sent: the ONU's own notifications (attribute value change) carry 0 |
//! | [`SESSION`] `0x0001..=0x3FFF` | each ONU's requests (Get, Start, its own windows, End, ...) |
//! | [`GROUP`] `0x4000..=0x7FFF` | the multicast group download's sections |
//!
//! Each counter starts at a point drawn from a seed ([`Counter::new`]), different for every ONU
//! and every run, so that an answer forged by a process that guesses TCIs is unlikely to match
//! one the OLT has outstanding (the OLT also takes answers only from the address it sends that
//! ONU's OMCC to: docs/decisions.md, Attribution).

use std::ops::RangeInclusive;

use omci_codec::Tci;

/// TCIs of each ONU's own requests.
pub(crate) const SESSION: RangeInclusive<u16> = 0x0001..=0x3FFF;
/// TCIs of the multicast group download's sections.
pub(crate) const GROUP: RangeInclusive<u16> = 0x4000..=0x7FFF;

/// A TCI counter over one range, wrapping within it.
#[derive(Clone, Debug)]
pub(crate) struct Counter {
    range: RangeInclusive<u16>,
    last: u16,
}

impl Counter {
    /// A counter over `range` whose first TCI is drawn from `seed` and `salt` (an ONU-ID, a
    /// group's target image), so that two sessions of one run, and two runs, start apart.
    pub(crate) fn new(range: RangeInclusive<u16>, seed: u64, salt: u64) -> Counter {
        let span = u64::from(range.end() - range.start()) + 1;
        let offset = (splitmix(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % span) as u16;
        Counter {
            last: range.start() + offset,
            range,
        }
    }

    /// The next TCI.
    pub(crate) fn next_tci(&mut self) -> Tci {
        self.last = if self.last >= *self.range.end() {
            *self.range.start()
        } else {
            self.last + 1
        };
        Tci(self.last)
    }
}

/// SplitMix64: a well-spread hash of a seed.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_stay_in_their_range_and_start_apart() {
        let mut c = Counter::new(SESSION, 7, 1);
        for _ in 0..40_000 {
            assert!(SESSION.contains(&c.next_tci().0));
        }
        let mut g = Counter::new(GROUP, 7, 1);
        for _ in 0..40_000 {
            assert!(GROUP.contains(&g.next_tci().0));
        }
        let firsts: std::collections::BTreeSet<u16> = (1..=64u64)
            .map(|onu| Counter::new(SESSION, 7, onu).next_tci().0)
            .collect();
        assert!(firsts.len() > 60, "ONUs start at different TCIs");
        assert_ne!(
            Counter::new(SESSION, 1, 1).next_tci(),
            Counter::new(SESSION, 2, 1).next_tci(),
            "runs start at different TCIs"
        );
    }
}

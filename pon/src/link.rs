//! Seeded link faults on a datagram path: drop, duplicate, reorder, corrupt one bit.
//!
//! The same seed gives the same faults, so a lossy run can be replayed.

/// The downstream channels of an ONU, for where link faults apply: one definition for the
/// ONU's command line (`onu run --faults-on`), the driver and the scenario files
/// (`[onus.link] on = ...`).
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
pub enum Paths {
    /// Both its own OMCC port and the multicast download group.
    #[default]
    Both,
    /// Its own OMCC port only.
    Unicast,
    /// The multicast download group only.
    Multicast,
}

impl Paths {
    /// Whether faults apply to (the ONU's own port, the multicast group).
    pub fn applies(self) -> (bool, bool) {
        match self {
            Paths::Both => (true, true),
            Paths::Unicast => (true, false),
            Paths::Multicast => (false, true),
        }
    }
}

/// Fault rates, each a probability per datagram (0.0..=1.0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaultRates {
    /// Lose the datagram.
    pub drop: f64,
    /// Deliver it twice.
    pub duplicate: f64,
    /// Hold it back and deliver it after the next one.
    pub reorder: f64,
    /// Flip one random bit.
    pub corrupt: f64,
}

impl LinkFaultRates {
    /// True when no fault can happen.
    pub fn is_clean(&self) -> bool {
        self.drop == 0.0 && self.duplicate == 0.0 && self.reorder == 0.0 && self.corrupt == 0.0
    }
}

/// A faulty link: feed each datagram through [`Link::pass`].
#[derive(Clone, Debug)]
pub struct Link {
    rates: LinkFaultRates,
    state: u64,
    held: Option<Vec<u8>>,
    /// Datagrams dropped, duplicated, reordered, corrupted.
    pub counts: [u64; 4],
}

impl Link {
    /// A link with `rates`, its faults drawn from `seed`.
    pub fn new(rates: LinkFaultRates, seed: u64) -> Self {
        Self {
            rates,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            held: None,
            counts: [0; 4],
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: small, fast, and enough for fault draws.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// True when the link changes nothing: no fault rate set and no datagram held back, so
    /// that a datagram can be taken as it is, without [`Link::pass`] (and its copies).
    pub fn is_clean(&self) -> bool {
        self.rates.is_clean() && self.held.is_none()
    }

    /// What the link delivers when `datagram` enters it: none, one or more datagrams.
    pub fn pass(&mut self, mut datagram: Vec<u8>) -> Vec<Vec<u8>> {
        if self.rates.is_clean() {
            return vec![datagram];
        }
        if self.chance(self.rates.drop) {
            self.counts[0] += 1;
            return self.held.take().into_iter().collect();
        }
        if self.chance(self.rates.corrupt) && !datagram.is_empty() {
            let bit = self.next() as usize % (datagram.len() * 8);
            datagram[bit / 8] ^= 1 << (bit % 8);
            self.counts[3] += 1;
        }
        let mut out = Vec::with_capacity(3);
        if self.held.is_none() && self.chance(self.rates.reorder) {
            self.counts[2] += 1;
            self.held = Some(datagram);
            return out;
        }
        if self.chance(self.rates.duplicate) {
            self.counts[1] += 1;
            out.push(datagram.clone());
        }
        out.push(datagram);
        if let Some(h) = self.held.take() {
            out.push(h);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_link_passes_everything() {
        let mut l = Link::new(LinkFaultRates::default(), 1);
        assert_eq!(l.pass(vec![1, 2]), vec![vec![1, 2]]);
    }

    #[test]
    fn rates_are_roughly_kept_and_replayable() {
        let rates = LinkFaultRates {
            drop: 0.1,
            duplicate: 0.05,
            reorder: 0.05,
            corrupt: 0.02,
        };
        let run = |seed| {
            let mut l = Link::new(rates, seed);
            let mut delivered = 0;
            for i in 0..10_000u32 {
                delivered += l.pass(i.to_be_bytes().to_vec()).len();
            }
            (delivered, l.counts)
        };
        let (delivered, counts) = run(7);
        assert_eq!(run(7), (delivered, counts), "same seed, same faults");
        assert_ne!(run(8).1, counts);
        assert!((800..1200).contains(&counts[0]), "drops {counts:?}");
        assert!((350..650).contains(&counts[1]), "duplicates {counts:?}");
        assert!((100..300).contains(&counts[3]), "corruptions {counts:?}");
        assert!((9_000..10_200).contains(&delivered));
    }

    #[test]
    fn reordering_swaps_neighbours() {
        let mut l = Link::new(
            LinkFaultRates {
                reorder: 1.0,
                ..Default::default()
            },
            3,
        );
        assert!(l.pass(vec![1]).is_empty());
        assert_eq!(l.pass(vec![2]), vec![vec![2], vec![1]]);
    }
}

//! The ranges of the values a person gives the lab, defined once: the `onu` and `olt` command
//! lines check their flags against them, and the scenario files their keys, so that a value one
//! accepts the other never refuses.
//!
//! This module holds the ranges the OLT and the ONUs share and the ONU's own; the OLT's own
//! (timeouts, retries, campaign settings) are in `olt::limits`.

use std::fmt;
use std::ops::RangeInclusive;

/// A closed range of whole numbers and what they count, for the checks and their messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// What the values count (`"ms"`, `"sections"`), or what they mean, for the messages.
    pub unit: &'static str,
}

impl Bounds {
    /// `min..=max` of `unit`.
    pub const fn new(min: u64, max: u64, unit: &'static str) -> Bounds {
        Bounds { min, max, unit }
    }

    /// The same range from `min`.
    pub const fn with_min(self, min: u64) -> Bounds {
        Bounds { min, ..self }
    }

    /// Whether `v` is allowed.
    pub fn contains(&self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }

    /// The range for clap's `value_parser!(u64).range(..)`.
    pub fn u64_range(&self) -> RangeInclusive<u64> {
        self.min..=self.max
    }

    /// The range for clap's `value_parser!(u8/u16/u32).range(..)` (clap checks those as i64).
    pub fn i64_range(&self) -> RangeInclusive<i64> {
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        i(self.min)..=i(self.max)
    }
}

/// `1 to 600000 ms`.
impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.min, self.max)?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

/// Sections per window: G.988 carries the window size less one in one byte (Start software
/// download), so 1 to 256. The OLT's `--window` and the ONU's `--max-window`.
pub const WINDOW: Bounds = Bounds::new(1, 256, "sections");

/// ONUs on one PON of the lab: 1 to 128 (DESIGN.md section 1). `onu run --count`, a scenario's
/// `topology.onus`.
pub const ONUS_PER_PON: Bounds = Bounds::new(1, 128, "ONUs");

/// How long an ONU answers End software download with "device busy" while it writes and checks
/// its flash (ms): at most a minute, which is what the OLT waits for (300 busy answers 200 ms
/// apart).
pub const BUSY_MS: Bounds = Bounds::new(0, 60_000, "ms");

/// How long an ONU's reboot takes (ms): at most a minute.
pub const REBOOT_MS: Bounds = Bounds::new(0, 60_000, "ms");

/// The N-th time a named power-loss point is reached (`onu run --fault POINT@N`).
pub const OCCURRENCE: Bounds = Bounds::new(1, u32::MAX as u64, "");

/// A share of ONUs or the manifest's rollout percent.
pub const PERCENT: Bounds = Bounds::new(0, 100, "percent");

/// Reads a probability per datagram (a link fault rate) from a command line: a clap value
/// parser. Allowed 0 to 1 (NaN and the infinities are not).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number: give a rate from 0 to 1"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a rate: give 0 to 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_say_their_range_and_unit() {
        assert_eq!(WINDOW.to_string(), "1 to 256 sections");
        assert_eq!(OCCURRENCE.to_string(), "1 to 4294967295");
        assert!(WINDOW.contains(256) && !WINDOW.contains(0) && !WINDOW.contains(257));
        assert_eq!(WINDOW.i64_range(), 1..=256);
        assert_eq!(Bounds::new(0, u64::MAX, "").i64_range(), 0..=i64::MAX);
    }

    #[test]
    fn rates_are_0_to_1() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert_eq!(parse_rate("1"), Ok(1.0));
        for bad in ["-0.1", "1.01", "NaN", "inf", "-inf", "", "one"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("0 to 1"), "{bad}: {e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn a_rate_parsed_is_a_probability(
            s in prop_oneof![
                "\\PC{0,24}",
                "[ +-]?[0-9]{0,3}(\\.[0-9]{0,6})?([eE][+-]?[0-9]{1,3})?",
                "[+-]?(NaN|nan|inf|infinity|Infinity)",
            ]
        ) {
            if let Ok(v) = parse_rate(&s) {
                prop_assert!((0.0..=1.0).contains(&v));
            }
        }
    }
}

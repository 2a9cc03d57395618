//! The values of a scenario file, each checked against its range as it is read: a value out of
//! range is reported by the TOML reader with its line and key, and by these readers with the
//! key's full name and the allowed range (`olt.timeout_ms = 0 is out of range: allowed 1 to
//! 600000 ms`). The ranges are those of the `olt` and `onu` command lines where the value is
//! passed on to one of them (`olt::limits`, `pon::limits`), so that a file `scenario check`
//! accepts is never refused by a process of the run.
//!
//! Each key has a reader function, made by [`whole!`], [`seconds!`] or [`text!`], named in
//! the key's `#[serde(deserialize_with = "...")]`.

use std::fmt;

use pon::limits::Bounds;
use serde::de::{self, Visitor};
use serde::{Deserialize as _, Deserializer};

/// How long a rollout may take, from the OLT's start to its end (s).
pub const TIME_LIMIT_S: Bounds = Bounds::new(1, 86_400, "s");
/// A campaign's scheduled start after the OLT's start (s); also before `time_limit_s`.
pub const START_IN_S: Bounds = Bounds::new(0, 86_400, "s");
/// Payload bytes of the image: at least one, and the image must fit the ONU's slot.
pub const IMAGE_SIZE: Bounds = Bounds::new(1, pon::firmware::MAX_PAYLOAD_LEN, "bytes");
/// An anti-rollback (security) version: the image header's 32 bits.
pub const SECURITY_VERSION: Bounds = Bounds::new(0, u32::MAX as u64, "");
/// Forged or corrupt frames a rogue sender sends.
pub const ROGUE_FRAMES: Bounds = Bounds::new(0, 100_000, "frames");
/// PON ports of the OLT.
pub const PONS: Bounds = Bounds::new(1, olt::engine::PonPort::MAX as u64, "PON ports");
/// An expected count of ONUs (over every PON port).
pub const EXPECTED_ONUS: Bounds = Bounds::new(0, 128 * olt::engine::PonPort::MAX as u64, "ONUs");

/// A range of seconds (or of any real number) and what it counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reals {
    /// The smallest value allowed.
    pub min: f64,
    /// The largest value allowed.
    pub max: f64,
    /// What the values count.
    pub unit: &'static str,
}

impl fmt::Display for Reals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {} {}", self.min, self.max, self.unit)
    }
}

/// A fault's time after the OLT's start (s); also before `time_limit_s`.
pub const AT_S: Reals = Reals {
    min: 0.0,
    max: 86_400.0,
    unit: "s",
};
/// How long a silent ONU stays silent (s).
pub const DURATION_S: Reals = Reals {
    min: 0.001,
    max: 3600.0,
    unit: "s",
};
/// How long a maintenance window stays open (s).
pub const WINDOW_S: Reals = Reals {
    min: 0.001,
    max: 86_400.0,
    unit: "s",
};
/// Frames on the group, in units of one download.
pub const GROUP_DOWNLOADS: Reals = Reals {
    min: 0.0,
    max: 1000.0,
    unit: "downloads",
};

/// The longest model name: the image header's model field.
pub(super) const MODEL_LEN: usize = pon::firmware::MODEL_LEN;
/// The longest version: the Software image ME's version attribute (G.988 9.1.4).
pub(super) const VERSION_LEN: usize = pon::firmware::VERSION_LEN;

/// Reads a whole number of `bounds` for `key`.
pub(super) fn read_whole<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    bounds: Bounds,
) -> Result<u64, D::Error> {
    d.deserialize_any(Whole { key, bounds })
}

fn out_of_range<E: de::Error>(key: &str, v: impl fmt::Display, allowed: impl fmt::Display) -> E {
    E::custom(format!("{key} = {v} is out of range: allowed {allowed}"))
}

struct Whole {
    key: &'static str,
    bounds: Bounds,
}

impl<'de> Visitor<'de> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from {}", self.bounds)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if self.bounds.contains(v) {
            Ok(v)
        } else {
            Err(out_of_range(self.key, v, self.bounds))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(out_of_range(self.key, v, self.bounds)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        Err(E::custom(format!(
            "{} = {v} is not a whole number: allowed {}",
            self.key, self.bounds
        )))
    }
}

/// Reads a finite real number of `range` for `key` (a whole number is one too).
pub(super) fn read_real<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    range: Reals,
) -> Result<f64, D::Error> {
    d.deserialize_any(Real { key, range })
}

struct Real {
    key: &'static str,
    range: Reals,
}

impl<'de> Visitor<'de> for Real {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number from {}", self.range)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        // NaN is in no range: `contains` is false for it.
        if (self.range.min..=self.range.max).contains(&v) {
            Ok(v)
        } else {
            Err(out_of_range(self.key, v, self.range))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        self.visit_f64(v as f64)
    }
}

/// Reads a name or version for `key`: 1 to `max` bytes, no control characters (they would end
/// up in image headers, file names and the summary).
pub(super) fn read_text<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    max: usize,
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s.len() > max {
        return Err(de::Error::custom(format!(
            "{key} = {s:?} is {} bytes: allowed 1 to {max} bytes",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(de::Error::custom(format!(
            "{key} = {s:?} has a control character: give letters, digits and punctuation"
        )));
    }
    Ok(s)
}

/// `whole!(name: u16 = "olt.window" in WINDOW)` makes the reader `name` of a whole number of
/// that range; `whole!(option name: ...)` the reader of an optional one (with `default`).
macro_rules! whole {
    ($name:ident: $ty:ty = $key:literal in $bounds:expr) => {
        pub(super) fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            let v = $crate::spec::values::read_whole(d, $key, $bounds)?;
            // The range fits the type: a failure here is a range wider than its field.
            <$ty>::try_from(v).map_err(|_| {
                <D::Error as serde::de::Error>::custom(format!(
                    "{} = {v} is out of range: allowed {}",
                    $key, $bounds
                ))
            })
        }
    };
    (option $name:ident: $ty:ty = $key:literal in $bounds:expr) => {
        pub(super) fn $name<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<$ty>, D::Error> {
            whole!(inner: $ty = $key in $bounds);
            inner(d).map(Some)
        }
    };
}

/// `seconds!(name = "faults.at_s" in AT_S)`: the reader of an optional real number.
macro_rules! seconds {
    ($name:ident = $key:literal in $range:expr) => {
        pub(super) fn $name<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<f64>, D::Error> {
            $crate::spec::values::read_real(d, $key, $range).map(Some)
        }
    };
}

/// `text!(name = "image.version", 14)` makes the reader of a name or version;
/// `text!(option name = ...)` of an optional one.
macro_rules! text {
    ($name:ident = $key:literal, $max:expr) => {
        pub(super) fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            $crate::spec::values::read_text(d, $key, $max)
        }
    };
    (option $name:ident = $key:literal, $max:expr) => {
        pub(super) fn $name<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<String>, D::Error> {
            $crate::spec::values::read_text(d, $key, $max).map(Some)
        }
    };
}

pub(super) use {seconds, text, whole};

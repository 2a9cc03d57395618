//! The image being rolled out, held once in memory whatever the ONU count: [`pon::image`]'s
//! [`UpgradeImage`] and its [`Cut`] into windows and sections, defined once for the OLT and
//! the conformance suite.

pub use pon::image::{Cut, UpgradeImage};

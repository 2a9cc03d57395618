//! The image being rolled out, held once whatever the ONU count: [`pon::image`]'s
//! [`UpgradeImage`] (in memory up to 64 MiB, read from its file beyond) and its [`Cut`] into
//! windows and sections, defined once for the OLT and the conformance suite.

pub use pon::image::{Cut, IN_MEMORY, ImageFileError, MAX_IMAGE, UpgradeImage};

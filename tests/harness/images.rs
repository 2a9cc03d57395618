//! Images for the in-process tests: built and signed on the fly with one test key.

use ed25519_dalek::SigningKey;
use pon::firmware::{BuildSpec, build, deterministic_payload};

/// The ONUs' model.
pub const MODEL: &str = "LAB-ONU-1";

/// The key the images are signed with, and the ONUs trust.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

/// An image of [`MODEL`]: `version`, security version, payload bytes, built to fail its boot.
pub fn image(version: &str, security: u32, len: usize, fails_to_boot: bool) -> Vec<u8> {
    image_for(MODEL, version, security, len, fails_to_boot)
}

/// An image for another model.
pub fn image_for(
    model: &str,
    version: &str,
    security: u32,
    len: usize,
    fails_to_boot: bool,
) -> Vec<u8> {
    let spec = BuildSpec {
        model: model.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot,
    };
    build(&spec, &deterministic_payload(version, len), &key()).expect("a test image builds")
}

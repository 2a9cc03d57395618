//! The release manifest written next to an image: what an OLT campaign reads to know what it
//! rolls out, to whom, and from when.
//!
//! ```json
//! {"device_model": "LAB-ONU-1", "version": "V2.0.0", "build": 42,
//!  "url": "file:///tmp/v2.img", "checksum": "sha256:<hex of the image file>",
//!  "signature": "<hex of the image's 64-byte Ed25519ph signature>", "type": "full",
//!  "rollout": {"percent": 10, "start": "2026-11-23T06:00:00Z"}}
//! ```
//!
//! A delta package's manifest (`onu image delta`) says `"type": "delta"`, names the target's
//! version and build, and adds the base it applies to:
//! `"base": {"version": "V1.0.0", "checksum": "sha256:<hex of the base image file>"}`.

use serde::{Deserialize, Serialize};

/// A release manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The model the image is for.
    pub device_model: String,
    /// The image's version string.
    pub version: String,
    /// Build number.
    pub build: u64,
    /// Where the image can be fetched (a `file://` URL in this lab).
    pub url: String,
    /// `"sha256:"` and the hex SHA-256 of the whole image file.
    pub checksum: String,
    /// Hex of the image's signature (its last 64 bytes).
    pub signature: String,
    /// `"full"`: the image replaces the whole software; `"delta"`: a delta package that
    /// rebuilds the image of `version` from the image `base` names.
    #[serde(rename = "type")]
    pub kind: String,
    /// For a delta package: the image it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ManifestBase>,
    /// The campaign's rollout plan.
    pub rollout: Rollout,
}

/// The base image a delta package applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestBase {
    /// The base image's version string.
    pub version: String,
    /// `"sha256:"` and the hex SHA-256 of the whole base image file.
    pub checksum: String,
}

/// When and to how many ONUs an image goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The canary wave's share of the target ONUs, in percent (0..=100).
    pub percent: u8,
    /// The earliest start, RFC 3339 (UTC).
    pub start: String,
}

impl Manifest {
    /// The SHA-256 the checksum names, as bytes.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        let hex_part = self.checksum.strip_prefix("sha256:")?;
        hex::decode(hex_part).ok()?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_as_documented() {
        let m = Manifest {
            device_model: "LAB-ONU-1".into(),
            version: "V2".into(),
            build: 3,
            url: "file:///x.img".into(),
            checksum: format!("sha256:{}", "ab".repeat(32)),
            signature: "00".repeat(64),
            kind: "full".into(),
            base: None,
            rollout: Rollout {
                percent: 10,
                start: "2026-11-23T06:00:00Z".into(),
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"type\":\"full\""));
        assert!(text.contains("\"rollout\":{\"percent\":10"));
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        assert_eq!(m.sha256(), Some([0xab; 32]));
        assert!(serde_json::from_str::<Manifest>(&text.replace("\"build\"", "\"bild\"")).is_err());
        assert!(
            !text.contains("base"),
            "a full image's manifest has no base"
        );
        let delta = Manifest {
            kind: "delta".into(),
            base: Some(ManifestBase {
                version: "V1".into(),
                checksum: format!("sha256:{}", "cd".repeat(32)),
            }),
            ..m
        };
        let text = serde_json::to_string(&delta).unwrap();
        assert!(
            text.contains("\"type\":\"delta\",\"base\":{\"version\":\"V1\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), delta);
    }
}

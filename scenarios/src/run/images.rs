//! The firmware of a run, written into its working directory: the lab's signing key (and a
//! stranger's, for a foreign image), each ONU model and version's factory (golden) image, the
//! image rolled out (tampered or foreign when the scenario says), and its manifest when the
//! OLT runs a campaign. Every image is built from the scenario's seed, so a run is repeatable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::plan::OnuPlan;
use crate::spec::{DeltaFault, Scenario};

/// Payload bytes of a golden image.
pub(crate) const GOLDEN_SIZE: usize = 16 * 1024;

/// The images of a run, on disk.
pub(super) struct Images {
    /// The key the ONUs trust.
    pub(super) key: SigningKey,
    /// Its public half, hex, as `onu run --public-key` reads it.
    pub(super) public_key: PathBuf,
    /// The golden image of each (model, version).
    goldens: BTreeMap<(String, String), PathBuf>,
    /// The image rolled out.
    pub(super) image: PathBuf,
    /// Its SHA-256, hex: the bytes an upgraded ONU must run.
    pub(super) sha256: String,
    /// Its Download sections (baseline or extended).
    pub(super) sections: u64,
    /// Its manifest, for a campaign.
    pub(super) manifest: Option<PathBuf>,
    /// The delta packages to it (`--delta`), one per base version the scenario names.
    pub(super) deltas: Vec<PathBuf>,
    /// Their manifests, for a campaign (a fleet adds each package with its manifest).
    pub(super) delta_manifests: Vec<PathBuf>,
    /// The TFTP server the ONUs fetch their golden image from in recovery mode (None: each
    /// reads its own file).
    pub(super) tftp: Option<std::net::SocketAddrV4>,
}

impl Images {
    /// Builds and writes the images of `s` for the ONUs of `plans` into `dir`.
    pub(super) fn write(
        s: &Scenario,
        plans: &BTreeMap<u16, OnuPlan>,
        dir: &Path,
    ) -> Result<Images> {
        let (key, foreign) = keys(s.seed);
        let public_key = dir.join("lab.pub");
        std::fs::write(
            &public_key,
            hex::encode(key.verifying_key().to_bytes()) + "\n",
        )?;
        let mut goldens: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
        for p in plans.values() {
            let k = (p.model.clone(), p.version.clone());
            let next = goldens.len() + 1;
            if let std::collections::btree_map::Entry::Vacant(slot) = goldens.entry(k) {
                let img = golden_image(s, &p.model, &p.version, &key)?;
                // Named by number: a model or version is the file's text, not a path.
                let path = dir.join(format!("golden-{next}.img"));
                std::fs::write(&path, img)?;
                slot.insert(path);
            }
        }
        let model = s.image.model.clone().unwrap_or(s.topology.model.clone());
        let signer = if s.image.foreign_key { &foreign } else { &key };
        let mut bytes = match s.image.deltas.first() {
            // A new version of the first base: what a delta is made for.
            Some(base) => {
                let old = golden_payload(&model, base);
                let how = pon::firmware::Derivation {
                    changed_pct: 3.0,
                    inserted_pct: 1.0,
                    moved_pct: 5.0,
                    seed: format!("{model}/{}", s.image.version),
                };
                let spec = pon::firmware::BuildSpec {
                    model: model.clone(),
                    version: s.image.version.clone(),
                    security_version: s.image.security_version,
                    build: 1,
                    fails_to_boot: s.image.fails_to_boot,
                };
                pon::firmware::build(&spec, &pon::firmware::derive_payload(&old, &how), signer)?
            }
            None => build(
                &model,
                &s.image.version,
                s.image.security_version,
                s.image.size,
                s.image.fails_to_boot,
                signer,
            )?,
        };
        if s.image.tampered {
            // One payload byte, after signing: the signature no longer matches.
            let at = pon::firmware::HEADER_LEN + s.image.size / 2;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 0x01;
            }
        }
        let image = dir.join("image.img");
        std::fs::write(&image, &bytes)?;
        let mut deltas = Vec::new();
        let mut delta_bases = Vec::new();
        for (n, base) in s.image.deltas.iter().enumerate() {
            let from = match s.image.delta_fault {
                Some(DeltaFault::WrongBase) => {
                    let spec = pon::firmware::BuildSpec {
                        model: model.clone(),
                        version: base.clone(),
                        security_version: s.image.installed_security_version,
                        build: 1,
                        fails_to_boot: false,
                    };
                    let other = pon::firmware::deterministic_payload("another build", GOLDEN_SIZE);
                    pon::firmware::build(&spec, &other, &key)?
                }
                _ => golden_image(s, &model, base, &key)?,
            };
            let mut package = pon::delta::build(&from, &bytes, &key)
                .with_context(|| format!("making the delta package from {base}"))?;
            if s.image.delta_fault == Some(DeltaFault::Tampered) {
                let at = pon::delta::DELTA_HEADER_LEN + (package.len() - 320) / 2;
                package[at] ^= 0x01;
            }
            let path = dir.join(format!("delta-{}.img", n + 1));
            std::fs::write(&path, &package)?;
            delta_bases.push((
                base.clone(),
                hex::encode(Sha256::digest(&from)),
                hex::encode(Sha256::digest(&package)),
                hex::encode(&package[package.len().saturating_sub(64)..]),
            ));
            deltas.push(path);
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let sections = bytes.len().div_ceil(if s.olt.extended { 1965 } else { 31 }) as u64;
        let manifest = match &s.olt.campaign {
            Some(c) => {
                let manifest = pon::manifest::Manifest {
                    device_model: model,
                    version: s.image.version.clone(),
                    build: 1,
                    url: format!("file://{}", image.display()),
                    checksum: format!("sha256:{sha256}"),
                    signature: hex::encode(&bytes[bytes.len().saturating_sub(64)..]),
                    kind: "full".into(),
                    base: None,
                    rollout: pon::manifest::Rollout {
                        percent: s.image.rollout_percent,
                        start: rfc3339_in(c.start_in_s.unwrap_or(0))?,
                    },
                };
                let path = dir.join("image.json");
                std::fs::write(&path, serde_json::to_string_pretty(&manifest)?)?;
                Some((path, manifest))
            }
            None => None,
        };
        // Each delta's manifest: the full image's, with the package's checksum and signature,
        // its type and its base.
        let mut delta_manifests = Vec::new();
        if let Some((_, full)) = &manifest {
            for ((version, base_sha, sha, signature), path) in delta_bases.iter().zip(&deltas) {
                let m = pon::manifest::Manifest {
                    url: format!("file://{}", path.display()),
                    checksum: format!("sha256:{sha}"),
                    signature: signature.clone(),
                    kind: "delta".into(),
                    base: Some(pon::manifest::ManifestBase {
                        version: version.clone(),
                        checksum: format!("sha256:{base_sha}"),
                    }),
                    ..full.clone()
                };
                let at = path.with_extension("json");
                std::fs::write(&at, serde_json::to_string_pretty(&m)?)?;
                delta_manifests.push(at);
            }
        }
        let manifest = manifest.map(|(path, _)| path);
        Ok(Images {
            key,
            public_key,
            goldens,
            image,
            sha256,
            sections,
            manifest,
            deltas,
            delta_manifests,
            tftp: None,
        })
    }

    /// Every golden image: its file name (what a TFTP server serves it as) and its path.
    pub(super) fn golden_files(&self) -> Vec<(String, PathBuf)> {
        self.goldens
            .values()
            .map(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                (name, p.clone())
            })
            .collect()
    }

    /// What ONU `p`'s `--golden` says: its file, or the file on the TFTP server.
    pub(super) fn golden_arg(&self, p: &OnuPlan) -> String {
        let path = self.golden(p);
        match self.tftp {
            Some(addr) => format!(
                "tftp://{addr}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            None => path.display().to_string(),
        }
    }

    /// The golden image of ONU `p` (its factory image, and what recovery restores).
    pub(super) fn golden(&self, p: &OnuPlan) -> &Path {
        &self.goldens[&(p.model.clone(), p.version.clone())]
    }
}

/// The lab's signing key for a seed, and a foreign one.
fn keys(seed: u64) -> (SigningKey, SigningKey) {
    let k = |tag: &str| {
        let d = Sha256::digest(format!("{tag}/{seed}").as_bytes());
        SigningKey::from_bytes(&d.into())
    };
    (k("omci-lab signing key"), k("a stranger's key"))
}

/// The payload of the golden image of `model` and `version` (as [`build`] makes it).
fn golden_payload(model: &str, version: &str) -> Vec<u8> {
    pon::firmware::deterministic_payload(&format!("{model}/{version}"), GOLDEN_SIZE)
}

/// The golden (factory) image of `model` and `version` in scenario `s`. The bases of its
/// deltas after the first are earlier releases of one line: derived from the first base
/// (2 % changed, 0.5 % inserted, 3 % moved), as a real PON's versions are; every other
/// version's payload is its own.
fn golden_image(s: &Scenario, model: &str, version: &str, key: &SigningKey) -> Result<Vec<u8>> {
    let first = s.image.deltas.first();
    if first.is_none_or(|f| f == version) || !s.image.deltas.iter().any(|d| d == version) {
        return build(
            model,
            version,
            s.image.installed_security_version,
            GOLDEN_SIZE,
            false,
            key,
        );
    }
    let how = pon::firmware::Derivation {
        changed_pct: 2.0,
        inserted_pct: 0.5,
        moved_pct: 3.0,
        seed: format!("{model}/{version}"),
    };
    let base = golden_payload(model, first.map_or("", String::as_str));
    let spec = pon::firmware::BuildSpec {
        model: model.into(),
        version: version.into(),
        security_version: s.image.installed_security_version,
        build: 1,
        fails_to_boot: false,
    };
    pon::firmware::build(&spec, &pon::firmware::derive_payload(&base, &how), key)
        .with_context(|| format!("building the {model} {version} image"))
}

/// A signed image of `size` payload bytes, the same for the same model and version.
fn build(
    model: &str,
    version: &str,
    security: u32,
    size: usize,
    fails: bool,
    key: &SigningKey,
) -> Result<Vec<u8>> {
    let spec = pon::firmware::BuildSpec {
        model: model.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot: fails,
    };
    let payload = pon::firmware::deterministic_payload(&format!("{model}/{version}"), size);
    pon::firmware::build(&spec, &payload, key)
        .with_context(|| format!("building the {model} {version} image"))
}

/// An RFC 3339 time `secs` seconds from now (the manifest's rollout start; at most a day, by
/// the file's reader).
fn rfc3339_in(secs: u64) -> Result<String> {
    let at = SystemTime::now()
        .checked_add(Duration::from_secs(secs))
        .with_context(|| {
            format!("olt.campaign.start_in_s = {secs}: no time this machine can tell")
        })?;
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

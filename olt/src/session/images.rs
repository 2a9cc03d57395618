//! What the OLT knows of an ONU's two software images, and G.988's rules for them.
//!
//! G.988 clause 9.1.4 and Appendix I.3 (the two-image state machine): an ONU holds two images;
//! at most one is committed (boots by default), at most one is active (runs), and an image that
//! is committed or active is valid. The states the procedure depends on, for the image being
//! rolled out (version V) and the standby image (neither active nor committed):
//!
//! | state | image 0 (committed/active/valid) | image 1 | what is missing |
//! |---|---|---|---|
//! | S1 | 1/1/1 | 0/0/0 | everything: Start into image 1 |
//! | S2 | 1/1/1 | 0/0/0 (download in progress) | the download |
//! | S3 | 1/1/1 | 0/0/1, version V | Activate, then Commit |
//! | S4 | 1/0/1 | 0/1/1, version V | Commit |
//!
//! and the primed states with the images swapped. An ONU that reports anything else (both
//! committed, both active, an active or committed image that is not valid) is in a state G.988
//! does not allow: the OLT does not treat it as progress.

use omci_codec::SoftwareImageAttributes;

/// The two images as last read with Get, each as the ONU said it (never corrected from the
/// other: G.988's rules are checked on what the ONU really said), with the order of the reads.
#[derive(Clone, Debug, Default)]
pub(super) struct Images {
    pub(super) read: [Option<SoftwareImageAttributes>; 2],
    /// When each image was read (a count of reads), so that the newest reading wins.
    order: [u64; 2],
    reads: u64,
}

/// Where an ONU stands with respect to the version being rolled out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Standing {
    /// It runs the version, committed, in this image: nothing to do.
    Done(u8),
    /// It runs the version uncommitted in this image (S4): only Commit is missing.
    Uncommitted(u8),
    /// The version waits valid in this standby image (S3): Activate and Commit are missing.
    Standby(u8),
    /// The version is committed in this image, which does not run (a Commit of the standby
    /// image, which G.988 allows): Activate boots it, and it is then active and committed.
    CommittedStandby(u8),
    /// The version must be downloaded into this standby image.
    Download(u8),
    /// No image is free: one is active and the other committed (another upgrade is half done).
    NoFreeImage,
}

impl Images {
    /// Records what a Get said of image `i`, as it said it.
    pub(super) fn note(&mut self, i: u8, a: SoftwareImageAttributes) {
        let i = usize::from(i & 1);
        self.reads += 1;
        self.order[i] = self.reads;
        self.read[i] = Some(a);
    }

    /// Forgets both images (they are read again).
    pub(super) fn forget(&mut self) {
        self.read = [None, None];
    }

    /// True when image `i` was read after image `j`.
    #[cfg(test)]
    fn newer(&self, i: usize, j: usize) -> bool {
        self.order[i] > self.order[j]
    }

    /// Image `i` as last read.
    pub(super) fn get(&self, i: u8) -> Option<&SoftwareImageAttributes> {
        self.read[usize::from(i & 1)].as_ref()
    }

    /// The version of the image for which `f` holds, as text: of the one read last when both
    /// do (an older reading of the other image may be out of date, after a reboot say).
    pub(super) fn version_where(
        &self,
        f: impl Fn(&SoftwareImageAttributes) -> bool,
    ) -> Option<String> {
        (0..2)
            .filter_map(|i| self.read[i].as_ref().map(|a| (self.order[i], a)))
            .filter(|(_, a)| f(a))
            .max_by_key(|(order, _)| *order)
            .and_then(|(_, a)| a.version)
            .map(|v| version_text(&v))
    }

    /// Where the ONU stands for `version`, from both images read together.
    pub(super) fn standing(&self, version: [u8; 14]) -> Option<Standing> {
        let [Some(a), Some(b)] = &self.read else {
            return None;
        };
        let images = [a, b];
        let has = |img: &SoftwareImageAttributes| img.version == Some(version);
        let yes = |v: Option<bool>| v == Some(true);
        let find = |f: &dyn Fn(&SoftwareImageAttributes) -> bool| {
            images.iter().position(|img| f(img)).map(|i| i as u8)
        };
        if let Some(i) = find(&|img| yes(img.is_active) && yes(img.is_committed) && has(img)) {
            return Some(Standing::Done(i));
        }
        if let Some(i) = find(&|img| yes(img.is_active) && !yes(img.is_committed) && has(img)) {
            return Some(Standing::Uncommitted(i));
        }
        if let Some(i) = find(&|img| {
            !yes(img.is_active) && yes(img.is_committed) && yes(img.is_valid) && has(img)
        }) {
            return Some(Standing::CommittedStandby(i));
        }
        let standby = |img: &SoftwareImageAttributes| !yes(img.is_active) && !yes(img.is_committed);
        if let Some(i) = find(&|img| standby(img) && yes(img.is_valid) && has(img)) {
            return Some(Standing::Standby(i));
        }
        Some(match find(&standby) {
            Some(i) => Standing::Download(i),
            None => Standing::NoFreeImage,
        })
    }
}

/// What is wrong with one image's attributes by G.988's rules: an active or committed image
/// must be valid.
pub(super) fn single_contradiction(i: u8, a: &SoftwareImageAttributes) -> Option<String> {
    let valid = a.is_valid == Some(true);
    match (a.is_committed == Some(true), a.is_active == Some(true)) {
        (true, true) if !valid => Some(format!("image {i} is committed and active but not valid")),
        (true, false) if !valid => Some(format!("image {i} is committed but not valid")),
        (false, true) if !valid => Some(format!("image {i} is active but not valid")),
        _ => None,
    }
}

/// What is wrong with the two images read together: never both committed, never both active,
/// and one of them runs.
pub(super) fn pair_contradiction(
    a: &SoftwareImageAttributes,
    b: &SoftwareImageAttributes,
) -> Option<String> {
    let yes = |v: Option<bool>| v == Some(true);
    single_contradiction(0, a)
        .or_else(|| single_contradiction(1, b))
        .or_else(|| {
            (yes(a.is_committed) && yes(b.is_committed))
                .then(|| "both images are committed".to_string())
        })
        .or_else(|| {
            (yes(a.is_active) && yes(b.is_active)).then(|| "both images are active".to_string())
        })
        .or_else(|| {
            (!yes(a.is_active) && !yes(b.is_active)).then(|| "neither image is active".to_string())
        })
}

/// Image attributes in G.988's words: "committed, active, valid, version V2.0".
pub(super) fn describe(a: &SoftwareImageAttributes) -> String {
    let flag = |v: Option<bool>, yes: &str, no: &str| match v {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => format!("{yes} unknown"),
    };
    let mut words = vec![
        flag(a.is_committed, "committed", "not committed"),
        flag(a.is_active, "active", "not active"),
        flag(a.is_valid, "valid", "not valid"),
    ];
    if let Some(v) = a.version {
        words.push(format!("version {}", version_text(&v)));
    }
    words.join(", ")
}

/// A version (or model) field as text: the bytes up to the first NUL.
pub(crate) fn version_text(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(c: bool, a: bool, v: bool, version: &str) -> SoftwareImageAttributes {
        let mut ver = [0u8; 14];
        ver[..version.len()].copy_from_slice(version.as_bytes());
        SoftwareImageAttributes {
            version: Some(ver),
            is_committed: Some(c),
            is_active: Some(a),
            is_valid: Some(v),
            ..Default::default()
        }
    }

    fn v(s: &str) -> [u8; 14] {
        let mut ver = [0u8; 14];
        ver[..s.len()].copy_from_slice(s.as_bytes());
        ver
    }

    fn images(a: SoftwareImageAttributes, b: SoftwareImageAttributes) -> Images {
        let mut i = Images::default();
        i.note(0, a);
        i.note(1, b);
        i
    }

    #[test]
    fn the_states_of_g988_are_recognised() {
        let s1 = images(img(true, true, true, "V1"), img(false, false, false, ""));
        assert_eq!(s1.standing(v("V2")), Some(Standing::Download(1)));
        let s3 = images(img(true, true, true, "V1"), img(false, false, true, "V2"));
        assert_eq!(s3.standing(v("V2")), Some(Standing::Standby(1)));
        let s4 = images(img(true, false, true, "V1"), img(false, true, true, "V2"));
        assert_eq!(s4.standing(v("V2")), Some(Standing::Uncommitted(1)));
        let done = images(img(false, false, true, "V1"), img(true, true, true, "V2"));
        assert_eq!(done.standing(v("V2")), Some(Standing::Done(1)));
        let committed = images(img(false, true, true, "V1"), img(true, false, true, "V2"));
        assert_eq!(
            committed.standing(v("V2")),
            Some(Standing::CommittedStandby(1))
        );
        let busy = images(img(true, false, true, "V1"), img(false, true, true, "V3"));
        assert_eq!(busy.standing(v("V2")), Some(Standing::NoFreeImage));
    }

    #[test]
    fn impossible_states_are_named() {
        let both = (img(true, true, true, "V1"), img(true, true, true, "V2"));
        assert_eq!(
            pair_contradiction(&both.0, &both.1).as_deref(),
            Some("both images are committed")
        );
        let active = (img(true, true, true, "V1"), img(false, true, true, "V2"));
        assert_eq!(
            pair_contradiction(&active.0, &active.1).as_deref(),
            Some("both images are active")
        );
        let invalid = img(false, true, false, "V2");
        assert_eq!(
            single_contradiction(0, &invalid).as_deref(),
            Some("image 0 is active but not valid")
        );
        // What the ONU said stays as it said it: a contradiction across two reads shows.
        let said = images(img(true, true, true, "V1"), img(true, true, true, "V2"));
        assert!(said.newer(1, 0));
        assert_eq!(
            said.version_where(|a| a.is_active == Some(true)).as_deref(),
            Some("V2")
        );
        let ok = (img(true, true, true, "V1"), img(false, false, false, ""));
        assert_eq!(pair_contradiction(&ok.0, &ok.1), None);
        assert_eq!(
            describe(&img(true, true, true, "V1")),
            "committed, active, valid, version V1"
        );
    }
}

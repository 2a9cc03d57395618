//! The 44 checks, as one sequence: each topic's file runs its checks in catalogue order and
//! leaves the ONU in the state the next topic starts from. Read-only checks come first, then
//! Start, the downloads, End, the refusals, and last Activate, reboot and Commit; the suite
//! leaves the ONU running the target's image, committed.
//!
//! - [`image_me`]: SWI-01..06, the Software image ME as it is.
//! - [`errors`]: ERR-01..04, the result codes of bad requests, and MIB reset.
//! - [`start`]: END-01 and STA-01..06, the refusals of Start and End, window negotiation.
//! - [`download`]: DLS-01..11, downloads in every window size, missing, reordered,
//!   duplicated and damaged sections, the lab's window CRC.
//! - [`end`]: END-02..07, ACT-01 and COM-01: End's verdicts, and what an image that is not
//!   valid may not do.
//! - [`activation`]: EXT-01, ACT-02..05, COM-02..03 and SWI-07: the extended message set,
//!   Activate, the fallback before Commit, Commit.
//!
//! A check records its verdict as soon as it has one; a run that cannot go on ends with a
//! [`SuiteError`] and the verdicts so far.

mod activation;
mod download;
mod end;
mod errors;
mod image_me;
mod start;

use omci_codec::contents::Contents;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{MeClass, MeId, ResultCode};

use super::SuiteError;
use super::client::{Answer, Client};
use super::report::Verdict;

/// Runs every check against the ONU behind `c`.
pub(super) async fn run(mut c: Client) -> Result<(), SuiteError> {
    let c = &mut c;
    // Does the target answer at all? If not, stop here with one clear error.
    if c.get(MeId::new(MeClass::ONU_G, 0), 0x8000).await?.is_none() && c.image(0).await?.is_none() {
        return Err(SuiteError::Silent {
            target: c.t.name.clone(),
            timeout: c.t.timeout,
        });
    }
    image_me::checks(c).await?;
    let before = errors::checks(c).await?;
    // The image neither active nor committed: every download goes there.
    let standby = start::checks(c, &before).await?;
    download::checks(c, standby).await?;
    end::checks(c, standby).await?;
    activation::checks(c, standby).await
}

fn pass_if(ok: bool, expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail {
            expected: expected.into(),
            observed: observed.into(),
        }
    }
}

/// The result code of an answer: the typed one, or, for a message the codec keeps raw, its
/// first content byte (where G.988 puts every response's result).
fn code(a: &Answer) -> Option<ResultCode> {
    let m = a.as_ref()?;
    m.contents.result().or(match &m.contents {
        Contents::Other(o) if o.ak => o.contents.first().map(|b| ResultCode::from(*b)),
        _ => None,
    })
}

/// Passes when the ONU answered with an error result (a refusal).
fn refused(a: &Answer) -> Verdict {
    pass_if(
        code(a).is_some_and(|r| r != ResultCode::Success),
        "an error result",
        result_of(a),
    )
}

fn result_of(a: &Answer) -> String {
    match (a, code(a)) {
        (None, _) => "no answer".into(),
        (Some(_), Some(r)) => format!("{r}"),
        (Some(m), None) => format!("{:?}", m.message_type()),
    }
}

fn fmt_img(a: &SoftwareImageAttributes) -> String {
    let v = a
        .version
        .map(|v| {
            String::from_utf8_lossy(&v)
                .trim_end_matches('\0')
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "version {v:?}, committed {}, active {}, valid {}",
        a.is_committed == Some(true),
        a.is_active == Some(true),
        a.is_valid == Some(true)
    )
}

/// Both images, `image 0 / image 1`.
fn fmt_both(i: &[SoftwareImageAttributes; 2]) -> String {
    format!("{} / {}", fmt_img(&i[0]), fmt_img(&i[1]))
}

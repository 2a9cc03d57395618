//! The 48 checks, as one sequence: each topic's file runs its checks in catalogue order and
//! leaves the ONU in the state the next topic starts from. Read-only checks come first, then
//! the MIB synchronisation, Start, the downloads, End, and last Activate, reboot and Commit;
//! the suite leaves the ONU running the target's image, committed.
//!
//! - [`image_me`]: SWI-01..06, the Software image ME as it is.
//! - [`errors`]: ERR-01..04, the result codes of bad requests, and MIB reset.
//! - [`mib`]: MIB-01..04, the MIB synchronisation an OLT runs at activation.
//! - [`start`]: STA-04, STA-05, then STA-01..03 and STA-06: window negotiation, then the
//!   refusals of Start, and that a new Start discards a partial download.
//! - [`download`]: DLS-01..05, END-01, DLS-06..11: downloads in every window size, End
//!   without Start, missing, reordered, duplicated and damaged sections, the lab's window CRC.
//! - [`end`]: END-02..07: End's verdicts, busy, the abort convention.
//! - [`activation`]: EXT-01, ACT-03, ACT-04, COM-02, COM-03, SWI-07, ACT-02, ACT-05, ACT-01,
//!   COM-01: the extended message set, Activate, the fallback before Commit, Commit, and last
//!   what an image that is not valid, or a call in progress, may not do.
//!
//! Every check of the catalogue is recorded, always: with its verdict, skipped with why when
//! what it needs is missing, or an error when the target stopped answering (a check that needs
//! the target starts with [`Client::begin`]). No check can pass against a target that does
//! nothing: a positive check needs the target's success and its consequence (a download ends
//! with the image valid, in its version), and a refusal is judged only after the target has
//! shown it implements the message it refuses ([`Client::needs_shown`]), and passes only on
//! the result codes G.988 prescribes for that case (docs/conformance.md).

mod activation;
mod download;
mod end;
mod errors;
mod image_me;
mod mib;
mod start;

use omci_codec::ResultCode;

use super::SuiteError;
use super::client::{Answer, Client};
use super::report::{RunEnd, Verdict};
use super::words;

/// Runs every check against the ONU behind `c`, and says how the run ended.
pub(super) async fn run(mut c: Client) -> Result<(), SuiteError> {
    let c = &mut c;
    // Does the target answer at all? If not, every check says so, and nothing else is sent.
    if !c.reachable().await? {
        let why = format!(
            "{} does not answer (Get of ONU-G and of software image 0, {} ms each, twice)",
            c.t.name,
            c.t.timeout.as_millis()
        );
        c.exchange().fill_remaining(&why);
        c.exchange().set_end(RunEnd::Unreachable { why });
        return Ok(());
    }
    image_me::checks(c).await?;
    errors::checks(c).await?;
    mib::checks(c).await?;
    // The image neither active nor committed: every download goes there.
    let standby = start::checks(c).await?;
    download::checks(c, &standby).await?;
    end::checks(c, &standby).await?;
    activation::checks(c, &standby).await?;
    let end = match c.finish().await? {
        None => RunEnd::Completed,
        Some(lost) => RunEnd::Lost {
            during: lost.during,
            why: lost.why,
        },
    };
    c.exchange()
        .fill_remaining("the suite did not run this check (a bug of the suite)");
    c.exchange().set_end(end);
    Ok(())
}

/// The standby image every download goes to, or why there is none (in words).
type Standby = Result<u16, String>;

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

/// The result code of an answer.
fn code(a: &Answer) -> Option<ResultCode> {
    a.as_ref().and_then(words::code_of)
}

/// A refusal: passes on one of the result codes `allowed` (those G.988 prescribes for the
/// case), fails on anything else, success and "not supported" included.
fn refusal(a: &Answer, allowed: &[ResultCode]) -> Verdict {
    pass_if(
        code(a).is_some_and(|r| allowed.contains(&r)),
        words::one_of(allowed),
        words::answer(a),
    )
}

/// [`refusal`] of a result already taken out of its answer.
fn refused(r: Option<ResultCode>, allowed: &[ResultCode]) -> Verdict {
    pass_if(
        r.is_some_and(|r| allowed.contains(&r)),
        words::one_of(allowed),
        words::code(r),
    )
}

/// The refusals of G.988's software download: the request is understood and well formed,
/// but cannot be carried out in the ONU's state (1, command processing error), or a parameter
/// names what may not be done (3, parameter error). G.988 names no other code for these
/// cases; 2 (not supported) says the ONU does not implement the message at all, 6 (busy) asks
/// for a retry, 4 and 5 deny an ME that exists.
const REFUSED: [ResultCode; 2] = [ResultCode::ProcessingError, ResultCode::ParameterError];

//! How the suite says what it expected and what it saw: in G.988's words ("result 0, command
//! processed successfully", "is committed 1"), never in Rust's. Every verdict's text goes
//! through here.

use omci_codec::contents::Contents;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Message, ResultCode};

/// `result 6, device busy`.
pub(super) fn result(r: ResultCode) -> String {
    format!("result {}, {}", r.as_u8(), r.description())
}

/// A result, or `no answer`.
pub(super) fn code(r: Option<ResultCode>) -> String {
    r.map_or_else(|| "no answer".into(), result)
}

/// How a request went: `was answered result 6, device busy`, or `got no answer`.
pub(super) fn reply(r: Option<ResultCode>) -> String {
    r.map_or_else(
        || "got no answer".into(),
        |r| format!("was answered {}", result(r)),
    )
}

/// How a request went, from its answer: [`reply`], or `was answered with a ...` for an answer
/// without a result field.
pub(super) fn reply_to(a: &Option<Message<'static>>) -> String {
    match a {
        None => "got no answer".into(),
        Some(_) => format!("was answered {}", answer(a)),
    }
}

/// Any of `codes`: `result 1, command processing error, or result 3, parameter error`.
pub(super) fn one_of(codes: &[ResultCode]) -> String {
    codes
        .iter()
        .map(|r| result(*r))
        .collect::<Vec<_>>()
        .join(", or ")
}

/// The result code of an answer: the typed one, or, for a message the codec keeps raw, its
/// first content byte (where G.988 puts the result of every response that has one).
pub(super) fn code_of(m: &Message<'_>) -> Option<ResultCode> {
    m.contents.result().or(match &m.contents {
        Contents::Other(o) if o.ak => o.contents.first().map(|b| ResultCode::from(*b)),
        _ => None,
    })
}

/// What an answer said: its result, or what it is when it has none.
pub(super) fn answer(a: &Option<Message<'static>>) -> String {
    match a {
        None => "no answer".into(),
        Some(m) => match code_of(m) {
            Some(r) => result(r),
            None => format!("a {}", m.contents.describe()),
        },
    }
}

/// A software image as a Get showed it: `version "V1.0", is committed 1, is active 0, is
/// valid 1` (an attribute the ONU did not give is left out).
pub(super) fn image(a: &SoftwareImageAttributes) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &a.version {
        let text = String::from_utf8_lossy(v);
        parts.push(format!("version \"{}\"", text.trim_end_matches('\0')));
    }
    for (name, flag) in [
        ("is committed", a.is_committed),
        ("is active", a.is_active),
        ("is valid", a.is_valid),
    ] {
        if let Some(f) = flag {
            parts.push(format!("{name} {}", u8::from(f)));
        }
    }
    parts.join(", ")
}

/// Both images: `image 0: ...; image 1: ...`.
pub(super) fn images(i: &[SoftwareImageAttributes; 2]) -> String {
    format!("image 0: {}; image 1: {}", image(&i[0]), image(&i[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_said_as_g988_says_them() {
        assert_eq!(
            result(ResultCode::Success),
            "result 0, command processed successfully"
        );
        assert_eq!(code(None), "no answer");
        assert_eq!(reply(None), "got no answer");
        assert_eq!(
            reply(Some(ResultCode::NotSupported)),
            "was answered result 2, command not supported"
        );
        assert_eq!(
            one_of(&[ResultCode::ProcessingError, ResultCode::ParameterError]),
            "result 1, command processing error, or result 3, parameter error"
        );
        let mut version = [0u8; 14];
        version[..4].copy_from_slice(b"V1.0");
        let a = SoftwareImageAttributes {
            version: Some(version),
            is_committed: Some(true),
            is_active: Some(false),
            is_valid: Some(true),
            ..Default::default()
        };
        assert_eq!(
            image(&a),
            "version \"V1.0\", is committed 1, is active 0, is valid 1"
        );
        assert!(!image(&a).contains("Some"));
    }
}

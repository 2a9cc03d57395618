//! Result, reason (G.988 clause 11.2.4, the result codes of response contents).

use std::fmt;

/// The result of an action, as an ONU reports it. Open: reserved values parse as
/// [`ResultCode::Unknown`] and re-emit unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// 0: command processed successfully.
    Success,
    /// 1: command processing error.
    ProcessingError,
    /// 2: command not supported.
    NotSupported,
    /// 3: parameter error.
    ParameterError,
    /// 4: unknown managed entity.
    UnknownMe,
    /// 5: unknown managed entity instance.
    UnknownInstance,
    /// 6: device busy.
    DeviceBusy,
    /// 7: instance exists.
    InstanceExists,
    /// 9: attribute(s) failed or unknown.
    AttributeFailure,
    /// Any other value (8 and 10..=255 are reserved).
    Unknown(u8),
}

impl ResultCode {
    /// The result from its byte.
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Success,
            1 => Self::ProcessingError,
            2 => Self::NotSupported,
            3 => Self::ParameterError,
            4 => Self::UnknownMe,
            5 => Self::UnknownInstance,
            6 => Self::DeviceBusy,
            7 => Self::InstanceExists,
            9 => Self::AttributeFailure,
            other => Self::Unknown(other),
        }
    }

    /// The byte of this result.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::ProcessingError => 1,
            Self::NotSupported => 2,
            Self::ParameterError => 3,
            Self::UnknownMe => 4,
            Self::UnknownInstance => 5,
            Self::DeviceBusy => 6,
            Self::InstanceExists => 7,
            Self::AttributeFailure => 9,
            Self::Unknown(v) => v,
        }
    }

    /// True only for [`ResultCode::Success`].
    pub fn is_success(self) -> bool {
        self == Self::Success
    }

    /// The G.988 wording, for readable output.
    pub fn description(self) -> &'static str {
        match self {
            Self::Success => "command processed successfully",
            Self::ProcessingError => "command processing error",
            Self::NotSupported => "command not supported",
            Self::ParameterError => "parameter error",
            Self::UnknownMe => "unknown managed entity",
            Self::UnknownInstance => "unknown managed entity instance",
            Self::DeviceBusy => "device busy",
            Self::InstanceExists => "instance exists",
            Self::AttributeFailure => "attribute(s) failed or unknown",
            Self::Unknown(_) => "reserved result code",
        }
    }
}

impl From<u8> for ResultCode {
    fn from(value: u8) -> Self {
        Self::from_u8(value)
    }
}

impl From<ResultCode> for u8 {
    fn from(value: ResultCode) -> Self {
        value.as_u8()
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u8(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(ResultCode::from_u8(b).as_u8(), b);
        }
        assert_eq!(ResultCode::from_u8(6), ResultCode::DeviceBusy);
        assert_eq!(ResultCode::from_u8(8), ResultCode::Unknown(8));
    }
}

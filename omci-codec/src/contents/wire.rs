//! The wire side of the contents: the writer behind `Contents::emit`, the nom parsers behind
//! `Contents::parse`, and their error type.

use super::*;

/// A cursor over the output; every write is within bounds checked by `encoded_len`.
pub(super) struct Writer<'o> {
    pub(super) out: &'o mut [u8],
    pub(super) at: usize,
}

impl Writer<'_> {
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    pub(super) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(super) fn instances(&mut self, ids: &[u16]) {
        self.u8(ids.len() as u8);
        for id in ids {
            self.u16(*id);
        }
    }
    pub(super) fn instance_results(&mut self, rs: &[InstanceResult]) {
        self.u8(rs.len() as u8);
        for r in rs {
            self.u16(r.me_instance);
            self.u8(r.result.as_u8());
        }
    }
}

// --------------------------------------------------------------------------------------------
// nom parsers

/// The nom error of this crate: where (as an address into the frame, turned into an offset by
/// the frame parser) and why.
#[derive(Debug)]
pub(crate) struct NomError {
    pub(crate) at: usize,
    pub(crate) kind: ParseErrorKind,
}

impl<'a> nom::error::ParseError<&'a [u8]> for NomError {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        NomError {
            at: addr(input),
            kind: ParseErrorKind::ContentsTruncated { field: "contents" },
        }
    }
    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

impl From<nom::Err<NomError>> for NomError {
    fn from(e: nom::Err<NomError>) -> Self {
        match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => e,
            // Only complete parsers are used, which never ask for more input.
            nom::Err::Incomplete(_) => NomError {
                at: 0,
                kind: ParseErrorKind::ContentsTruncated { field: "contents" },
            },
        }
    }
}

type PResult<'a, T> = IResult<&'a [u8], T, NomError>;

pub(crate) fn addr(s: &[u8]) -> usize {
    s.as_ptr() as usize
}

/// Names the field a truncation happened in.
pub(super) fn named<'a, T>(
    field: &'static str,
    mut p: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> impl FnMut(&'a [u8]) -> PResult<'a, T> {
    move |i| {
        p(i).map_err(|e| {
            e.map(|mut e| {
                if let ParseErrorKind::ContentsTruncated { field: f } = &mut e.kind {
                    *f = field;
                }
                e
            })
        })
    }
}

pub(super) fn u8_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> PResult<'a, u8> {
    named(field, be_u8)
}
pub(super) fn u16_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> PResult<'a, u16> {
    named(field, be_u16)
}
pub(super) fn u32_<'a>(field: &'static str) -> impl FnMut(&'a [u8]) -> PResult<'a, u32> {
    named(field, be_u32)
}
pub(super) fn result_(i: &[u8]) -> PResult<'_, ResultCode> {
    let (i, r) = u8_("result")(i)?;
    Ok((i, ResultCode::from_u8(r)))
}

pub(super) fn take_<'a>(
    field: &'static str,
    n: usize,
) -> impl FnMut(&'a [u8]) -> PResult<'a, &'a [u8]> {
    named(field, nom::bytes::complete::take(n))
}

/// All that is left: a field that runs to the end of the contents. Returns (rest, field), the
/// rest being empty, like a nom parser.
pub(super) fn rest(i: &[u8]) -> (&[u8], &[u8]) {
    (&i[i.len()..], i)
}

pub(super) fn instance_list(i: &[u8]) -> PResult<'_, InstanceList> {
    let (mut i, n) = u8_("number of instances")(i)?;
    let mut ids = InstanceList::new();
    for _ in 0..n {
        let (rest, id) = u16_("software image ME id")(i)?;
        ids.push(id);
        i = rest;
    }
    Ok((i, ids))
}

pub(super) fn instance_results(i: &[u8]) -> PResult<'_, InstanceResults> {
    let (mut i, n) = u8_("number of instances")(i)?;
    let mut out = InstanceResults::new();
    for _ in 0..n {
        let (rest, me_instance) = u16_("software image ME id")(i)?;
        let (rest, result) = result_(rest)?;
        out.push(InstanceResult {
            me_instance,
            result,
        });
        i = rest;
    }
    Ok((i, out))
}

/// One record of a MIB upload next response: ME class, instance, attribute mask, then
/// `values` bytes of attribute values.
pub(super) fn mib_record(i: &[u8], values: usize) -> PResult<'_, MibUploadRecord<'_>> {
    let (i, class) = u16_("ME class")(i)?;
    let (i, instance) = u16_("ME instance")(i)?;
    let (i, attribute_mask) = u16_("attribute mask")(i)?;
    let (i, v) = take_("attribute values", values)(i)?;
    Ok((
        i,
        MibUploadRecord {
            me: MeId::new(MeClass(class), instance),
            attribute_mask,
            values: Cow::Borrowed(v),
        },
    ))
}

/// One record of a Get all alarms next response: ME class, instance, the 28-byte bitmap.
pub(super) fn alarm_record(i: &[u8]) -> PResult<'_, AlarmRecord> {
    let (i, class) = u16_("ME class")(i)?;
    let (i, instance) = u16_("ME instance")(i)?;
    let (i, b) = take_("alarm bitmap", ALARM_BITMAP_LEN)(i)?;
    let mut bitmap = [0u8; ALARM_BITMAP_LEN];
    bitmap.copy_from_slice(b);
    Ok((
        i,
        AlarmRecord {
            me: MeId::new(MeClass(class), instance),
            bitmap,
        },
    ))
}

#[inline(always)]
pub(super) fn parse_typed<'a>(
    message_type: MessageType,
    ak: bool,
    me: MeId,
    format: Format,
    c: &'a [u8],
) -> PResult<'a, Contents<'a>> {
    use Contents as C;
    use MessageType as T;
    Ok(match (message_type, ak) {
        (T::StartSoftwareDownload, false) => {
            let (i, window_size_minus_one) = u8_("window size - 1")(c)?;
            let (i, image_size) = u32_("image size")(i)?;
            let (i, instances) = instance_list(i)?;
            (
                i,
                C::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                    window_size_minus_one,
                    image_size,
                    instances,
                }),
            )
        }
        (T::StartSoftwareDownload, true) => {
            let (i, result) = result_(c)?;
            let (i, window_size_minus_one) = u8_("window size - 1")(i)?;
            let (i, instances) = instance_results(i)?;
            (
                i,
                C::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                    result,
                    window_size_minus_one,
                    instances,
                }),
            )
        }
        (T::DownloadSection, false) => {
            let (data, section_number) = u8_("download section number")(c)?;
            if data.is_empty() {
                return Err(nom::Err::Failure(NomError {
                    at: addr(data),
                    kind: ParseErrorKind::FieldOutOfRange {
                        field: "download section data",
                        value: 0,
                        allowed: "1..=1965 bytes",
                    },
                }));
            }
            let (i, data) = rest(data);
            (
                i,
                C::DownloadSectionRequest(DownloadSectionRequest {
                    section_number,
                    data: Cow::Borrowed(data),
                }),
            )
        }
        (T::DownloadSection, true) => {
            let (i, result) = result_(c)?;
            let (i, section_number) = u8_("download section number")(i)?;
            (
                i,
                C::DownloadSectionResponse(DownloadSectionResponse {
                    result,
                    section_number,
                }),
            )
        }
        (T::EndSoftwareDownload, false) => {
            let (i, crc) = u32_("CRC-32")(c)?;
            let (i, image_size) = u32_("image size")(i)?;
            let (i, instances) = instance_list(i)?;
            (
                i,
                C::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                    crc,
                    image_size,
                    instances,
                }),
            )
        }
        (T::EndSoftwareDownload, true) => {
            let (i, result) = result_(c)?;
            let (i, instances) = instance_results(i)?;
            (
                i,
                C::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse { result, instances }),
            )
        }
        (T::ActivateSoftware, false) => {
            let (i, activate_flags) = u8_("activate flags")(c)?;
            (
                i,
                C::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags }),
            )
        }
        (T::ActivateSoftware, true) => {
            let (i, result) = result_(c)?;
            (i, C::ActivateSoftwareResponse { result })
        }
        (T::CommitSoftware, false) => (c, C::CommitSoftwareRequest),
        (T::CommitSoftware, true) => {
            let (i, result) = result_(c)?;
            (i, C::CommitSoftwareResponse { result })
        }
        (T::Get, false) => {
            let (i, attribute_mask) = u16_("attribute mask")(c)?;
            (i, C::GetRequest(GetRequest { attribute_mask }))
        }
        (T::Get, true) => {
            let (i, result) = result_(c)?;
            let (i, attribute_mask) = u16_("attribute mask")(i)?;
            let (i, values, optional_attribute_mask, attribute_execution_mask) = match format {
                Format::Baseline => {
                    let (i, values) = take_("attribute values", BASELINE_GET_VALUES_LEN)(i)?;
                    let (i, opt) = u16_("optional-attribute mask")(i)?;
                    let (i, exec) = u16_("attribute execution mask")(i)?;
                    (i, values, opt, exec)
                }
                Format::Extended => {
                    let (i, opt) = u16_("optional-attribute mask")(i)?;
                    let (values, exec) = u16_("attribute execution mask")(i)?;
                    let (i, values) = rest(values);
                    (i, values, opt, exec)
                }
            };
            (
                i,
                C::GetResponse(GetResponse {
                    result,
                    attributes: AttributeValues::decode(me, format, attribute_mask, values),
                    optional_attribute_mask,
                    attribute_execution_mask,
                }),
            )
        }
        (T::MibReset, false) => (c, C::MibResetRequest),
        (T::MibReset, true) => {
            let (i, result) = result_(c)?;
            (i, C::MibResetResponse { result })
        }
        (T::Reboot, false) => {
            let (i, reboot_condition) = u8_("reboot condition")(c)?;
            (i, C::RebootRequest(RebootRequest { reboot_condition }))
        }
        (T::Reboot, true) => {
            let (i, result) = result_(c)?;
            (i, C::RebootResponse { result })
        }
        (T::MibUpload, false) => (c, C::MibUploadRequest),
        (T::MibUpload, true) => {
            let (i, subsequent_commands) = u16_("number of subsequent commands")(c)?;
            (
                i,
                C::MibUploadResponse(MibUploadResponse {
                    subsequent_commands,
                }),
            )
        }
        (T::MibUploadNext, false) => {
            let (i, command_sequence_number) = u16_("command sequence number")(c)?;
            (
                i,
                C::MibUploadNextRequest(NextRequest {
                    command_sequence_number,
                }),
            )
        }
        (T::MibUploadNext, true) => {
            let mut records = Vec::new();
            let mut i = c;
            match format {
                Format::Baseline => {
                    let (rest, record) = mib_record(i, BASELINE_MIB_UPLOAD_VALUES_LEN)?;
                    records.push(record);
                    i = rest;
                }
                Format::Extended => {
                    while !i.is_empty() {
                        let (rest, size) = u16_("size of the ME's attribute values")(i)?;
                        let (rest, record) = mib_record(rest, usize::from(size))?;
                        records.push(record);
                        i = rest;
                    }
                }
            }
            (
                i,
                C::MibUploadNextResponse(MibUploadNextResponse { records }),
            )
        }
        (T::GetAllAlarms, false) => {
            let (i, alarm_retrieval_mode) = u8_("alarm retrieval mode")(c)?;
            (
                i,
                C::GetAllAlarmsRequest(GetAllAlarmsRequest {
                    alarm_retrieval_mode,
                }),
            )
        }
        (T::GetAllAlarms, true) => {
            let (i, subsequent_commands) = u16_("number of subsequent commands")(c)?;
            (
                i,
                C::GetAllAlarmsResponse(GetAllAlarmsResponse {
                    subsequent_commands,
                }),
            )
        }
        (T::GetAllAlarmsNext, false) => {
            let (i, command_sequence_number) = u16_("command sequence number")(c)?;
            (
                i,
                C::GetAllAlarmsNextRequest(NextRequest {
                    command_sequence_number,
                }),
            )
        }
        (T::GetAllAlarmsNext, true) => {
            let mut records = Vec::new();
            let mut i = c;
            match format {
                Format::Baseline => {
                    let (rest, record) = alarm_record(i)?;
                    records.push(record);
                    i = rest;
                }
                Format::Extended => {
                    while !i.is_empty() {
                        let (rest, record) = alarm_record(i)?;
                        records.push(record);
                        i = rest;
                    }
                }
            }
            (
                i,
                C::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse { records }),
            )
        }
        (T::AttributeValueChange, false) => {
            let (values, attribute_mask) = u16_("attribute mask")(c)?;
            let (i, values) = rest(values);
            (
                i,
                C::AttributeValueChange(AttributeValueChange {
                    attributes: AttributeValues::decode(me, format, attribute_mask, values),
                }),
            )
        }
        (message_type, ak) => {
            let (i, raw) = rest(c);
            (
                i,
                C::Other(OtherMessage {
                    message_type,
                    ak,
                    contents: Cow::Borrowed(raw),
                }),
            )
        }
    })
}

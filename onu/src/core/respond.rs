//! The answers on the wire: a response to a request (by its contents, or by a result code
//! alone), in the request's format and with its TCI, and the attribute value changes of a
//! software image's flags.

use std::borrow::Cow;

use omci_codec::contents::{
    AttributeValues, Contents, DownloadSectionResponse, EndSoftwareDownloadResponse, GetResponse,
    StartSoftwareDownloadResponse,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::{SoftwareImageAttributes, SoftwareImageId};
use omci_codec::{Format, MeClass, MeId, Message, MessageType, ResultCode, Tci};

use super::Onu;
use crate::flash::Flash;

impl<F: Flash> Onu<F> {
    fn send(&mut self, msg: &Message<'_>) {
        self.send_with(Envelope::omcc(self.cfg.onu_id), msg);
    }

    pub(super) fn send_with(&mut self, envelope: Envelope, msg: &Message<'_>) {
        match self.codec.to_vec(msg) {
            Ok(frame) => {
                self.outbox.push_back(envelope.wrap(&frame));
                self.counters.sent += 1;
            }
            Err(e) => self.drop_frame(format!("could not encode a response: {e}")),
        }
    }

    pub(super) fn respond(&mut self, req: &Message<'_>, contents: Contents<'_>) {
        let resp = Message::new(req.tci, req.format, req.me, contents);
        self.send(&resp);
    }

    pub(super) fn respond_code(&mut self, req: &Message<'_>, code: ResultCode) {
        self.respond_raw(req.tci, req.format, req.me, req.message_type(), code);
    }

    /// The response of `message_type` carrying only `code` (the other fields zero).
    pub(super) fn respond_raw(
        &mut self,
        tci: Tci,
        format: Format,
        me: MeId,
        message_type: MessageType,
        code: ResultCode,
    ) {
        let contents = match message_type {
            MessageType::StartSoftwareDownload => {
                Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                    result: code,
                    window_size_minus_one: 0,
                    instances: Default::default(),
                })
            }
            MessageType::DownloadSection => {
                Contents::DownloadSectionResponse(DownloadSectionResponse {
                    result: code,
                    section_number: 0,
                })
            }
            MessageType::EndSoftwareDownload => {
                Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                    result: code,
                    instances: Default::default(),
                })
            }
            MessageType::ActivateSoftware => Contents::ActivateSoftwareResponse { result: code },
            MessageType::CommitSoftware => Contents::CommitSoftwareResponse { result: code },
            MessageType::MibReset => Contents::MibResetResponse { result: code },
            MessageType::Reboot => Contents::RebootResponse { result: code },
            MessageType::Get => Contents::GetResponse(GetResponse {
                result: code,
                attributes: AttributeValues::Raw {
                    attribute_mask: 0,
                    values: Cow::Owned(match format {
                        Format::Baseline => {
                            vec![0; omci_codec::contents::BASELINE_GET_VALUES_LEN]
                        }
                        Format::Extended => Vec::new(),
                    }),
                },
                optional_attribute_mask: 0,
                attribute_execution_mask: 0,
            }),
            other => Contents::Other(omci_codec::contents::OtherMessage {
                message_type: other,
                ak: true,
                contents: Cow::Owned(match format {
                    Format::Baseline => {
                        let mut c = vec![0u8; 32];
                        c[0] = code.as_u8();
                        c
                    }
                    Format::Extended => vec![code.as_u8()],
                }),
            }),
        };
        let resp = Message::new(tci, format, me, contents);
        self.send(&resp);
    }

    /// An attribute value change of a software image's flags.
    pub(super) fn notify_flags(&mut self, slot: u8) {
        let attrs = self.software_image_attributes(slot);
        let notification = SoftwareImageAttributes {
            is_committed: attrs.is_committed,
            is_active: attrs.is_active,
            is_valid: attrs.is_valid,
            ..Default::default()
        };
        let msg = Message::new(
            Tci(0),
            Format::Baseline,
            MeId::new(
                MeClass::SOFTWARE_IMAGE,
                SoftwareImageId::onu(slot).instance(),
            ),
            Contents::AttributeValueChange(omci_codec::contents::AttributeValueChange {
                attributes: AttributeValues::SoftwareImage(Box::new(notification)),
            }),
        );
        self.send(&msg);
    }
}

//! The capture files of a run: read into [`Frame`]s, each with what its transport envelope
//! said (the packet's comment, docs/wire.md), and joined into one file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use omci_codec::{Codec, ExtendedTrailer};

use super::frame::Frame;

/// Reads the capture files in order and returns their OMCI frames, with times counted from the
/// first frame of the first file, and the envelope each packet's comment records (none for a
/// packet without one, or whose envelope comment is damaged). Packets that are not OMCI, whose
/// direction or peer the MAC addresses do not tell, or whose frame does not decode are
/// skipped; a file whose records are damaged part way keeps the frames before the damage.
pub fn read_frames(paths: &[PathBuf]) -> anyhow::Result<Vec<Frame>> {
    let codec = Codec::new(ExtendedTrailer::Crc32);
    let mut frames = Vec::new();
    let mut origin: Option<Duration> = None;
    for (file, path) in paths.iter().enumerate() {
        let reader =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let packets = omci_codec::pcap::CaptureReader::new(std::io::BufReader::new(reader))
            .with_context(|| format!("reading {}", path.display()))?;
        // One packet at a time; a damaged record ends the file (its frames before are kept).
        for packet in packets.map_while(Result::ok).filter(|p| p.ethernet) {
            let Some(eth) = omci_codec::pcap::parse_ethernet(&packet.data) else {
                continue;
            };
            let (Some(direction), Some(peer)) = (eth.direction, eth.peer) else {
                continue;
            };
            // Cut the Ethernet padding of a short frame off: first as the header tells
            // (extended frames with their CRC-32 trailer), then as it is.
            let mut candidates = vec![eth.omci];
            if let Some(len) = omci_codec::pcap::omci_frame_len(eth.omci, 4)
                && len < eth.omci.len()
            {
                candidates.insert(0, &eth.omci[..len]);
            }
            let Some(message) = candidates.iter().find_map(|c| codec.parse(c).ok()) else {
                continue;
            };
            let origin = *origin.get_or_insert(packet.timestamp);
            let time = packet.timestamp.saturating_sub(origin);
            let envelope = packet.envelope().and_then(Result::ok);
            frames.push(Frame::new(time, file, direction, peer, envelope, &message));
        }
    }
    Ok(frames)
}

/// Writes the packets of the capture files `paths`, in order, into one capture `out`, each
/// with its time stamp and its envelope comment (`omci_codec::pcap::merge_captures`). A file
/// that cannot be opened or read is left out (an OLT life that wrote nothing); a damaged one
/// gives the packets before the damage.
pub fn merge_captures(paths: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let captures: Vec<omci_codec::pcap::Capture> = paths
        .iter()
        .filter_map(|p| std::fs::File::open(p).ok())
        .filter_map(|f| omci_codec::pcap::read_capture(std::io::BufReader::new(f)).ok())
        .collect();
    let file = std::fs::File::create(out).with_context(|| format!("writing {}", out.display()))?;
    let mut w = omci_codec::pcap::merge_captures(&captures, std::io::BufWriter::new(file))
        .with_context(|| format!("writing {}", out.display()))?;
    std::io::Write::flush(&mut w).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

//! The ONU's flash: two software image slots, two copies of a metadata record, and the
//! rebuild area a delta package's target is rebuilt into (docs/onu.md, "Flash layout").
//!
//! On disk ([`FileFlash`]) a state directory holds `slot0.img`, `slot1.img`, `meta0.bin`,
//! `meta1.bin` and, while or after a delta is rebuilt, `rebuild.img`. In memory
//! ([`MemFlash`]) the same byte strings live in vectors, so that a deterministic test can "cut
//! the power" by dropping the ONU and booting a new one from the same flash.
//!
//! The rebuild area is written only by a rebuild and read only by its verification; it
//! becomes a slot's contents in one step ([`Flash::promote_rebuild`]: a rename on disk), so
//! a slot holds either the downloaded package or the whole rebuilt image, never a mixture.
//!
//! The flash itself knows nothing of faults: a torn write is simulated by the caller writing
//! only part of what it meant to, then stopping (see `faults`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The number of software image slots.
pub const SLOTS: usize = 2;

/// Storage for two image slots and two metadata copies.
pub trait Flash {
    /// Bytes stored in `slot` (0 or 1).
    fn slot_len(&mut self, slot: u8) -> io::Result<u64>;
    /// Reads `buf.len()` bytes of `slot` from `offset`; bytes never written read as zero.
    fn read_slot(&mut self, slot: u8, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `data` into `slot` at `offset`, growing the slot as needed.
    fn write_slot(&mut self, slot: u8, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Empties `slot` (a new download starts from nothing).
    fn erase_slot(&mut self, slot: u8) -> io::Result<()>;
    /// Makes every write to `slot` durable.
    fn sync_slot(&mut self, slot: u8) -> io::Result<()>;
    /// The bytes of metadata copy `copy` (0 or 1), `None` if it was never written.
    fn read_meta(&mut self, copy: u8) -> io::Result<Option<Vec<u8>>>;
    /// Replaces metadata copy `copy` with `bytes`, durably.
    fn write_meta(&mut self, copy: u8, bytes: &[u8]) -> io::Result<()>;
    /// Reads `buf.len()` bytes of the rebuild area from `offset`; bytes never written read as
    /// zero.
    fn read_rebuild(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `data` into the rebuild area at `offset`, growing it as needed.
    fn write_rebuild(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Empties the rebuild area, durably.
    fn erase_rebuild(&mut self) -> io::Result<()>;
    /// Makes the rebuild area's bytes `slot`'s, durably and in one step (what the slot held
    /// is gone), and leaves the rebuild area empty.
    fn promote_rebuild(&mut self, slot: u8) -> io::Result<()>;
}

/// Reads `buf.len()` bytes from `data` at `offset`, zero past its end.
fn read_padded(data: &[u8], offset: u64, buf: &mut [u8]) {
    buf.fill(0);
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start.saturating_add(buf.len()).min(data.len());
    buf[..end - start].copy_from_slice(&data[start..end]);
}

/// Writes `data` into `into` at `offset`, growing it as needed.
fn write_growing(into: &mut Vec<u8>, offset: u64, data: &[u8]) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(io::Error::other)?;
    let end = start + data.len();
    if into.len() < end {
        into.resize(end, 0);
    }
    into[start..end].copy_from_slice(data);
    Ok(())
}

/// Reads a whole slot.
pub fn read_whole_slot(flash: &mut dyn Flash, slot: u8) -> io::Result<Vec<u8>> {
    let len = flash.slot_len(slot)?;
    let len = usize::try_from(len).map_err(|_| io::Error::other("slot larger than memory"))?;
    let mut buf = vec![0u8; len];
    flash.read_slot(slot, 0, &mut buf)?;
    Ok(buf)
}

/// Flash in memory, for deterministic tests. Cloning it is taking a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemFlash {
    /// The slots' bytes.
    pub slots: [Vec<u8>; SLOTS],
    /// The metadata copies' bytes.
    pub meta: [Option<Vec<u8>>; 2],
    /// The rebuild area's bytes.
    pub rebuild: Vec<u8>,
}

fn slot_index(slot: u8) -> io::Result<usize> {
    match slot {
        0 | 1 => Ok(usize::from(slot)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no slot {slot}"),
        )),
    }
}

impl Flash for MemFlash {
    fn slot_len(&mut self, slot: u8) -> io::Result<u64> {
        Ok(self.slots[slot_index(slot)?].len() as u64)
    }

    fn read_slot(&mut self, slot: u8, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_padded(&self.slots[slot_index(slot)?], offset, buf);
        Ok(())
    }

    fn write_slot(&mut self, slot: u8, offset: u64, data: &[u8]) -> io::Result<()> {
        write_growing(&mut self.slots[slot_index(slot)?], offset, data)
    }

    fn erase_slot(&mut self, slot: u8) -> io::Result<()> {
        self.slots[slot_index(slot)?].clear();
        Ok(())
    }

    fn sync_slot(&mut self, slot: u8) -> io::Result<()> {
        slot_index(slot).map(|_| ())
    }

    fn read_meta(&mut self, copy: u8) -> io::Result<Option<Vec<u8>>> {
        Ok(self.meta[slot_index(copy)?].clone())
    }

    fn write_meta(&mut self, copy: u8, bytes: &[u8]) -> io::Result<()> {
        self.meta[slot_index(copy)?] = Some(bytes.to_vec());
        Ok(())
    }

    fn read_rebuild(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_padded(&self.rebuild, offset, buf);
        Ok(())
    }

    fn write_rebuild(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        write_growing(&mut self.rebuild, offset, data)
    }

    fn erase_rebuild(&mut self) -> io::Result<()> {
        self.rebuild.clear();
        Ok(())
    }

    fn promote_rebuild(&mut self, slot: u8) -> io::Result<()> {
        self.slots[slot_index(slot)?] = std::mem::take(&mut self.rebuild);
        Ok(())
    }
}

/// Flash in a state directory, one file per slot and per metadata copy.
///
/// A slot file, once written, stays open (a download writes it a section at a time: opening
/// it for each of a megabyte's 34 000 sections cost more than everything else the ONU does).
/// Writes are positioned (`pwrite`), so an open file has no cursor to get wrong.
#[derive(Debug)]
pub struct FileFlash {
    dir: PathBuf,
    open: [Option<File>; SLOTS],
    /// The rebuild area's file, once opened for writing.
    rebuild: Option<File>,
}

impl FileFlash {
    /// Flash in `dir`, created if missing.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            open: [None, None],
            rebuild: None,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot_path(&self, slot: u8) -> io::Result<PathBuf> {
        slot_index(slot).map(|i| self.dir.join(format!("slot{i}.img")))
    }

    fn meta_path(&self, copy: u8) -> io::Result<PathBuf> {
        slot_index(copy).map(|i| self.dir.join(format!("meta{i}.bin")))
    }

    fn rebuild_path(&self) -> PathBuf {
        self.dir.join("rebuild.img")
    }

    /// The rebuild area's file, opened for writing (created if missing) the first time.
    fn rebuild_file(&mut self) -> io::Result<&File> {
        if self.rebuild.is_none() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.rebuild_path())?;
            self.rebuild = Some(f);
        }
        self.rebuild
            .as_ref()
            .ok_or_else(|| io::Error::other("rebuild file not open"))
    }

    /// The slot's file, opened for writing (created if missing) the first time.
    fn slot_file(&mut self, slot: u8) -> io::Result<&File> {
        let i = slot_index(slot)?;
        if self.open[i].is_none() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.slot_path(slot)?)?;
            self.open[i] = Some(f);
        }
        self.open[i]
            .as_ref()
            .ok_or_else(|| io::Error::other("slot file not open"))
    }
}

impl Flash for FileFlash {
    fn slot_len(&mut self, slot: u8) -> io::Result<u64> {
        if let Some(f) = &self.open[slot_index(slot)?] {
            return Ok(f.metadata()?.len());
        }
        match fs::metadata(self.slot_path(slot)?) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn read_slot(&mut self, slot: u8, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        // Reading never creates the file (`onu status` reads a flash it must not change).
        let opened;
        let f = match &self.open[slot_index(slot)?] {
            Some(f) => f,
            None => match File::open(self.slot_path(slot)?) {
                Ok(f) => {
                    opened = f;
                    &opened
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            },
        };
        let mut filled = 0;
        while filled < buf.len() {
            match f.read_at(&mut buf[filled..], offset + filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(())
    }

    fn write_slot(&mut self, slot: u8, offset: u64, data: &[u8]) -> io::Result<()> {
        self.slot_file(slot)?.write_all_at(data, offset)
    }

    fn erase_slot(&mut self, slot: u8) -> io::Result<()> {
        let f = self.slot_file(slot)?;
        f.set_len(0)?;
        f.sync_all()
    }

    fn sync_slot(&mut self, slot: u8) -> io::Result<()> {
        self.slot_file(slot)?.sync_all()
    }

    fn read_meta(&mut self, copy: u8) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.meta_path(copy)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_meta(&mut self, copy: u8, bytes: &[u8]) -> io::Result<()> {
        // In place, on purpose: the record's two copies (not a rename) are what survives a torn
        // write, exactly as on a raw flash partition.
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.meta_path(copy)?)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    fn read_rebuild(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let f = self.rebuild_file()?;
        let mut filled = 0;
        while filled < buf.len() {
            match f.read_at(&mut buf[filled..], offset + filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(())
    }

    fn write_rebuild(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.rebuild_file()?.write_all_at(data, offset)
    }

    fn erase_rebuild(&mut self) -> io::Result<()> {
        let f = self.rebuild_file()?;
        f.set_len(0)?;
        f.sync_all()
    }

    fn promote_rebuild(&mut self, slot: u8) -> io::Result<()> {
        let to = self.slot_path(slot)?;
        self.rebuild_file()?.sync_all()?;
        // The rename is the one step: the slot's name points at the old file or the new one.
        self.open[usize::from(slot)] = None;
        self.rebuild = None;
        fs::rename(self.rebuild_path(), &to)?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(flash: &mut dyn Flash) {
        assert_eq!(flash.slot_len(1).unwrap(), 0);
        flash.write_slot(1, 10, b"abc").unwrap();
        assert_eq!(flash.slot_len(1).unwrap(), 13);
        let mut buf = [9u8; 16];
        flash.read_slot(1, 8, &mut buf).unwrap();
        assert_eq!(&buf[..8], &[0, 0, b'a', b'b', b'c', 0, 0, 0]);
        flash.sync_slot(1).unwrap();
        assert_eq!(read_whole_slot(flash, 1).unwrap().len(), 13);
        flash.erase_slot(1).unwrap();
        assert_eq!(flash.slot_len(1).unwrap(), 0);
        assert_eq!(flash.read_meta(0).unwrap(), None);
        flash.write_meta(0, b"meta").unwrap();
        assert_eq!(flash.read_meta(0).unwrap().as_deref(), Some(&b"meta"[..]));
        assert!(flash.write_slot(2, 0, b"x").is_err());
        flash.write_slot(0, 0, b"base").unwrap();
        flash.write_slot(1, 0, b"the package").unwrap();
        flash.write_rebuild(2, b"xy").unwrap();
        let mut r = [9u8; 5];
        flash.read_rebuild(0, &mut r).unwrap();
        assert_eq!(r, [0, 0, b'x', b'y', 0]);
        flash.promote_rebuild(1).unwrap();
        assert_eq!(read_whole_slot(flash, 1).unwrap(), b"\0\0xy");
        assert_eq!(read_whole_slot(flash, 0).unwrap(), b"base");
        flash.read_rebuild(0, &mut r).unwrap();
        assert_eq!(r, [0; 5], "the rebuild area is empty after a promotion");
        flash.write_rebuild(0, b"z").unwrap();
        flash.erase_rebuild().unwrap();
        flash.read_rebuild(0, &mut r).unwrap();
        assert_eq!(r, [0; 5]);
    }

    #[test]
    fn memory_flash_behaves() {
        exercise(&mut MemFlash::default());
    }

    #[test]
    fn file_flash_behaves_the_same() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&mut FileFlash::open(&dir.path().join("onu")).unwrap());
    }
}

//! A Parquet chunk reader over a shared file handle that reads with `pread`, so any number of
//! readers (threads reading columns of one result in parallel, clones of a result used from
//! several tasks) never disturb each other. The stock `File` reader seeks a shared offset.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

/// An open part file read at explicit offsets.
#[derive(Debug, Clone)]
pub(crate) struct PreadFile {
    file: Arc<File>,
    len: u64,
}

impl PreadFile {
    /// The open file's identity: device, inode, size and modification time, which no other
    /// file shares while this one is open (parts are immutable once written).
    pub fn identity(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        match self.file.metadata() {
            Ok(m) => format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ),
            Err(_) => String::new(),
        }
    }

    pub fn new(file: File) -> std::io::Result<PreadFile> {
        let len = file.metadata()?.len();
        Ok(PreadFile {
            file: Arc::new(file),
            len,
        })
    }
}

impl Length for PreadFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from an offset onwards, with its own position.
pub(crate) struct PreadReader {
    file: Arc<File>,
    pos: u64,
}

impl Read for PreadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ChunkReader for PreadFile {
    type T = std::io::BufReader<PreadReader>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(std::io::BufReader::new(PreadReader {
            file: self.file.clone(),
            pos: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn readers_keep_their_own_positions() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(b"0123456789").unwrap();
        let f = PreadFile::new(tmp).unwrap();
        let (mut a, mut b) = (f.get_read(2).unwrap(), f.get_read(7).unwrap());
        let mut x = [0u8; 2];
        a.read_exact(&mut x).unwrap();
        let mut y = [0u8; 2];
        b.read_exact(&mut y).unwrap();
        assert_eq!((&x, &y), (b"23", b"78"));
        assert_eq!(f.get_bytes(4, 3).unwrap().as_ref(), b"456");
        assert_eq!(f.len(), 10);
    }
}

//! Spooling a body to an anonymous temporary file, enforcing the size and
//! line-length limits as it arrives.

use std::io::{Seek, SeekFrom};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::error::StoreError;

/// Buffer between the body and the file; bodies arrive in small chunks.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes `body` to a new temporary file and returns it rewound.
///
/// The file is anonymous (unlinked at creation), so the operating system
/// removes it when it is closed, whatever happens to this process. More than
/// `max_bytes` is `TooLarge` as soon as it arrives; with `max_line_bytes`, a
/// longer line is `BadInput` naming it.
pub(crate) async fn spool<S>(
    mut body: S,
    max_bytes: u64,
    max_line_bytes: Option<usize>,
) -> Result<std::fs::File, StoreError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut file = tempfile::tempfile()?;
    let mut writer = tokio::io::BufWriter::with_capacity(
        WRITE_BUFFER,
        tokio::fs::File::from_std(file.try_clone()?),
    );
    let mut lines = max_line_bytes.map(LineLimit::new);
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        total = total.saturating_add(chunk.len() as u64);
        if total > max_bytes {
            return Err(StoreError::TooLarge { limit: max_bytes });
        }
        if let Some(lines) = &mut lines {
            lines.feed(&chunk)?;
        }
        writer.write_all(&chunk).await?;
    }
    writer.flush().await?;
    // The clone shares the file offset; it must be done writing before the
    // rewind.
    drop(writer);
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Counts lines and their lengths across chunk boundaries.
struct LineLimit {
    max: usize,
    /// 1-based number of the line being read.
    line: u64,
    /// Bytes of that line seen so far.
    len: usize,
}

impl LineLimit {
    fn new(max: usize) -> Self {
        LineLimit {
            max,
            line: 1,
            len: 0,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), StoreError> {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.check(self.len + end)?;
            self.line += 1;
            self.len = 0;
            chunk = &chunk[end + 1..];
        }
        self.len += chunk.len();
        self.check(self.len)
    }

    fn check(&self, len: usize) -> Result<(), StoreError> {
        if len > self.max {
            return Err(StoreError::bad_line(
                self.line,
                format!("line is longer than {} bytes", self.max),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_split_across_chunks_is_named() {
        let mut limit = LineLimit::new(5);
        limit.feed(b"abc\nabcde\nab").unwrap();
        let error = limit.feed(b"cdef\n").unwrap_err();
        assert!(matches!(error, StoreError::BadInput { line: Some(3), .. }));
    }
}

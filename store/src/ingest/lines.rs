//! Lines of the spooled body: numbering for error messages, and iteration.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Seek, SeekFrom},
};

/// Reads ahead of the parsers; the spooled file is local.
const READ_BUFFER: usize = 1 << 16;

/// The 1-based number of the line on which the record starting at byte
/// `offset` begins. Line terminators at `offset` (the rest of a CRLF, blank
/// lines a parser skipped) belong to the lines before the record.
pub(super) fn line_at(file: &File, offset: u64) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut newlines = 0u64;
    let mut before = (&mut reader).take(offset);
    loop {
        let buf = before.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        newlines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        before.consume(len);
    }
    loop {
        let buf = reader.fill_buf()?;
        let skip = buf
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        newlines += buf[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
        let done = skip < buf.len() || buf.is_empty();
        reader.consume(skip);
        if done {
            break;
        }
    }
    Ok(newlines + 1)
}

/// The lines of a file from some offset, each with its number and offset.
pub(super) struct Lines<'a> {
    reader: BufReader<&'a File>,
    buf: Vec<u8>,
    /// Number of the next line.
    line: u64,
    /// Offset of the next line.
    offset: u64,
}

/// One line, terminator included.
pub(super) struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// Byte offset of its start.
    pub offset: u64,
    /// Its bytes, with the `\n` if it has one.
    pub bytes: &'a [u8],
}

impl Line<'_> {
    /// Whether it holds nothing but whitespace.
    pub(super) fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

impl<'a> Lines<'a> {
    /// Lines from `offset`, which starts line `number`.
    pub(super) fn new(file: &'a File, number: u64, offset: u64) -> std::io::Result<Self> {
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        reader.seek(SeekFrom::Start(offset))?;
        Ok(Lines {
            reader,
            buf: Vec::new(),
            line: number,
            offset,
        })
    }

    /// The next line, or None at the end.
    pub(super) fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let read = self.reader.read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        let line = Line {
            number: self.line,
            offset: self.offset,
            bytes: &self.buf,
        };
        self.line += 1;
        self.offset += read as u64;
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_record_after_crlf_and_blank_lines_is_on_its_own_line() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"a,b\r\n1,2\r\n\n3,4\n").unwrap();
        assert_eq!(line_at(&file, 0).unwrap(), 1);
        assert_eq!(line_at(&file, 4).unwrap(), 2);
        assert_eq!(line_at(&file, 5).unwrap(), 2);
        assert_eq!(line_at(&file, 10).unwrap(), 4);
    }
}

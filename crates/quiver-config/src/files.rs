//! Reading the files operators name (strategies, registry, settings,
//! models): regular files only, of a bounded size. A path naming
//! `/dev/zero` would otherwise be read until memory runs out, and a FIFO
//! would block the reader for ever.

use std::io::{self, Read};
use std::path::Path;

/// The largest strategies file, registry or settings file read: 16 MiB.
pub const CONFIG_FILE_LIMIT: u64 = 16 << 20;

/// The largest model file read: 1 GiB.
pub const MODEL_FILE_LIMIT: u64 = 1 << 30;

/// The bytes of the regular file at `path`, refused (before it is opened)
/// when it is a device, a FIFO, a socket or a directory, and when it holds
/// more than `limit` bytes, even if it grows while being read.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    check_regular(path, limit)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// What [`read_regular`] checks before it opens `path`, without opening it:
/// that it is a regular file of at most `limit` bytes (as it is now).
/// Returns its size.
pub fn check_regular(path: &Path, limit: u64) -> io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a regular file ({}); only regular files are read",
                describe(kind)
            ),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    Ok(meta.len())
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the {limit}-byte limit for this kind of file"),
    )
}

/// [`read_regular`] as UTF-8 text; text that is not UTF-8 is refused naming
/// the line and column of its first bad byte.
pub fn read_regular_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|err| {
        let bytes = err.as_bytes();
        let at = err.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Columns count characters, as editors show them.
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text: line {line}, column {column} holds byte 0x{:02x}",
                bytes[at]
            ),
        )
    })
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_not_utf8_is_refused_naming_the_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, b"strategies:\n  - id: \xc3\xa9t\xff\n").unwrap();
        let err = read_regular_text(&path, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not UTF-8 text: line 2, column 11 holds byte 0xff"
        );
    }

    #[test]
    fn devices_directories_fifos_and_oversized_files_are_refused() {
        let zero = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(zero.to_string().contains("a device"), "{zero}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(dir.path(), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Refused without opening it: opening a FIFO blocks until a writer comes.
        let err = read_regular(&fifo, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        assert_eq!(read_regular(&big, 101).unwrap().len(), 101);
        let err = read_regular(&big, 100).unwrap_err();
        assert!(err.to_string().contains("100-byte limit"), "{err}");
    }
}

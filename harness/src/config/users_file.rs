//! A user's file read as text, or refused in one line that names it and
//! says what to give instead: empty, not text, far too big.

use std::path::Path;

use crate::error::{Error, Result};

/// The most a user's configuration file or install script may weigh: the
/// largest real one we met is a few hundred lines; a file past this is a
/// log, an archive or a wrong path.
pub const USERS_FILE_LIMIT: u64 = 1024 * 1024;

/// Reads a user's file (a `--config` file of `kind`, an install script) as
/// text, refusing in one line, with the file and what to give instead, one
/// that is empty, not text or over [`USERS_FILE_LIMIT`].
pub fn read_users_file(path: &Path, kind: &str) -> Result<String> {
    let unreadable = |source| Error::Fixture {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |detail: String| {
        Err(Error::UsersFile {
            path: path.to_path_buf(),
            detail,
        })
    };
    // The size first: a wrong path to a disk image must not be read whole.
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > USERS_FILE_LIMIT {
        return refuse(format!(
            "{:.1} MiB is not a {kind} file (at most {} KiB is read): is it the right path?",
            size as f64 / 1048576.0,
            USERS_FILE_LIMIT / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            return refuse(format!(
                "line {line}: not text (byte 0x{:02x} at offset {at} is not UTF-8): give the {kind} file itself, saved as text, not an archive, an image or a binary",
                e.as_bytes()[at]
            ));
        }
    };
    if text.contains('\0') {
        let line = text[..text.find('\0').unwrap_or(0)].matches('\n').count() + 1;
        return refuse(format!(
            "line {line}: not text (a NUL byte): give the {kind} file itself, saved as text"
        ));
    }
    if text.trim().is_empty() {
        return refuse(format!(
            "the file is empty: give the {kind} file your server reads (an empty one would leave the design's server with nothing of yours to check)"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &[u8]) -> String {
        let dir = crate::tempdir::TempDir::new("users-file");
        std::fs::create_dir_all(dir.path()).unwrap();
        let path = dir.path().join("1-haproxy_ssl_termination");
        std::fs::write(&path, bytes).unwrap();
        read_users_file(&path, "haproxy").unwrap_err().to_string()
    }

    #[test]
    fn an_empty_binary_or_huge_file_is_refused_in_one_line_naming_it() {
        let empty = refusal(b"  \n\n");
        assert!(
            empty.contains("1-haproxy_ssl_termination`: the file is empty: give the haproxy file"),
            "{empty}"
        );
        let binary = refusal(b"global\n  daemon\n\x1f\x8b\x08\xff");
        assert!(
            binary.contains("line 3: not text (byte 0x8b at offset"),
            "{binary}"
        );
        let nul = refusal(b"global\n\0\0");
        assert!(nul.contains("line 2: not text (a NUL byte)"), "{nul}");
        let huge = refusal(&vec![b'#'; 2 * 1024 * 1024]);
        assert!(
            huge.contains("2.0 MiB is not a haproxy file (at most 1024 KiB is read)"),
            "{huge}"
        );
        for refusal in [empty, binary, nul, huge] {
            assert_eq!(refusal.lines().count(), 1, "{refusal}");
        }
    }
}

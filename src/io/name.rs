//! How a file name appears in a message: as it is when it is plain, and otherwise quoted the way
//! bash reads it back (`$'a\nb'`), so that a name can neither split an error line in two nor send
//! escape codes to a terminal, and can still be pasted into a shell.

use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The name of `path` for messages. Every message that names a file gets the name from here.
pub(crate) fn quoted(path: &Path) -> String {
    let bytes = path.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(plain) if !plain.chars().any(char::is_control) => plain.to_string(),
        _ => ansi_c(bytes),
    }
}

/// Bash's `$'...'` form: control characters and bytes that are not UTF-8 as escapes, the
/// backslash and the quote escaped so that the form reads back as exactly these bytes.
fn ansi_c(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    let hex = |out: &mut String, byte: u8| {
        let _ = write!(out, "\\x{byte:02x}");
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => c
                    .encode_utf8(&mut [0; 4])
                    .bytes()
                    .for_each(|b| hex(&mut out, b)),
                c => out.push(c),
            }
        }
        chunk.invalid().iter().for_each(|&b| hex(&mut out, b));
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn quote(bytes: &[u8]) -> String {
        quoted(Path::new(OsStr::from_bytes(bytes)))
    }

    #[test]
    fn plain_names_are_unchanged() {
        for name in ["data.bin", "/tmp/a b/c's", r"back\slash", "été.txt", "-"] {
            assert_eq!(quote(name.as_bytes()), name);
        }
    }

    #[test]
    fn control_characters_and_stray_bytes_are_escaped() {
        assert_eq!(quote(b"a\nb"), r"$'a\nb'");
        assert_eq!(quote(b"\ttab\r"), r"$'\ttab\r'");
        assert_eq!(quote(b"\x1b[31mred"), r"$'\x1b[31mred'");
        assert_eq!(quote(b"del\x7f"), r"$'del\x7f'");
        assert_eq!(quote("c1\u{85}".as_bytes()), r"$'c1\xc2\x85'");
        assert_eq!(quote(b"bad\xffutf8"), r"$'bad\xffutf8'");
        assert_eq!(quote(b"it's\\\n"), r"$'it\'s\\\n'");
    }

    #[test]
    fn a_quoted_name_reads_back_in_bash_as_the_same_bytes() {
        let name: &[u8] = b"a'b\\c\nd\te\x1bf\xfe\xc3\xa9";
        let script = format!("printf %s {}", quote(name));
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("run bash");
        assert_eq!(out.stdout, name);
    }
}

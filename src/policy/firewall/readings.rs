//! How origins may read a request path, for `denyPaths` and for route
//! selection (`table`), which must not depend on how the origin reads it.
//!
//! Origins disagree on what a path names. Python's WSGI and nginx decode
//! `%2F` into a separator; Windows servers also split on `\`; Tomcat and
//! Spring drop `;params` from each segment (`/..;/admin` is `/../admin`
//! there); Go, Node and most others keep `;` as a plain character; Express
//! routes on the undecoded path, where `%2e%2e` is a name, not `..`; some
//! servers merge `//` before resolving `..`, others after. A deny decision
//! must hold whatever the origin is, so a path is resolved under every
//! combination of these choices that its characters make differ, and
//! refused when any reading lands under a denied prefix (fail closed).
//! A single "most aggressive" reading is not enough: `/admin/..;/x` is
//! `/x` to Tomcat but `/admin/..;/x` to Go, and
//! `/admin/a%2f..%2f../../secret` is `/admin/secret` to an origin that
//! keeps `%2F` but `/secret` to one that splits on it.
//!
//! What is forwarded never changes; the readings are only judged. A path
//! with no `%`, `;`, `\` and no empty, `.` or `..` segment has one reading,
//! itself, and costs a scan and no allocation.

use crate::api::values::is_unreserved;

/// Percent-escapes of unreserved characters are decoded (RFC 3986
/// §6.2.2.2): `%61dmin` is `admin`, `%2e%2e` is `..`.
const DECODE: u8 = 1;
/// `%2F` separates segments.
const ENCODED_SLASH: u8 = 1 << 1;
/// `\` and `%5C` separate segments.
const BACKSLASH: u8 = 1 << 2;
/// `;` starts a segment's parameters, which are dropped.
const PARAMS: u8 = 1 << 3;
/// Empty segments are dropped before `..` is resolved (`/a//../b` is
/// `/b`), not after (RFC 3986 §5.2.4: `/a/b`).
const MERGE_FIRST: u8 = 1 << 4;

/// The most path bytes read to judge one path, over all its readings
/// (up to 32 of them): a fraction of a millisecond. A path that would
/// need more — longer than 2 KiB with every kind of trick in it, 32 KiB
/// with `%` alone — is judged denied (fail closed), so a long crafted path
/// cannot make each request cost milliseconds. Real paths are far
/// shorter: nginx refuses request lines over 8 KiB by default.
const MAX_READ_BYTES: usize = 64 * 1024;

/// Whether `denied` holds for any reading of `path`; true, too, when
/// `path` is too long to read every way (see [`MAX_READ_BYTES`]).
pub(crate) fn any_reading(path: &str, mut denied: impl FnMut(&str) -> bool) -> bool {
    if is_plain(path) {
        return denied(path);
    }
    let choices = choices(path);
    if path.len() << choices.count_ones() > MAX_READ_BYTES {
        return true;
    }
    let mut reader = Reader::default();
    // Every subset of the choices that matter for this path, `choices`
    // first, the empty set last.
    let mut how = choices;
    loop {
        if denied(reader.read(path, how)) {
            return true;
        }
        if how == 0 {
            return false;
        }
        how = (how - 1) & choices;
    }
}

/// Whether every reading of `path` is `path` itself: no `%`, `;` or `\`,
/// and no empty (`//`), `.` or `..` segment (a trailing `/` is fine).
/// A scan, no allocation: callers check it before [`any_reading`] to keep
/// plain paths at one judgement.
pub(crate) fn is_plain(path: &str) -> bool {
    if path.bytes().any(|b| matches!(b, b'%' | b';' | b'\\')) {
        return false;
    }
    let mut segments = path.split('/').skip(usize::from(path.starts_with('/')));
    let mut last = None;
    for segment in segments.by_ref() {
        if let Some(previous) = last.replace(segment) {
            if matches!(previous, "" | "." | "..") {
                return false;
            }
        }
    }
    !matches!(last, Some("." | ".."))
}

/// The choices whose two sides may read `path` differently.
fn choices(path: &str) -> u8 {
    let bytes = path.as_bytes();
    let escape = |hex: &[u8; 2]| {
        bytes
            .windows(3)
            .any(|w| w[0] == b'%' && w[1..].eq_ignore_ascii_case(hex))
    };
    let mut how = 0;
    if bytes.contains(&b'%') {
        how |= DECODE;
    }
    if escape(b"2f") {
        how |= ENCODED_SLASH;
    }
    if bytes.contains(&b'\\') || escape(b"5c") {
        how |= BACKSLASH;
    }
    if bytes.contains(&b';') {
        how |= PARAMS;
    }
    // New separators and dropped parameters can make empty segments.
    if how & (ENCODED_SLASH | BACKSLASH | PARAMS) != 0 || path.contains("//") {
        how |= MERGE_FIRST;
    }
    how
}

/// Buffers reused across the readings of one path.
#[derive(Debug, Default)]
struct Reader {
    /// The bytes of every segment read so far (popped ones included).
    bytes: Vec<u8>,
    /// The resolved path so far, as ranges of `bytes`.
    stack: Vec<(usize, usize)>,
    /// The reading, as a path.
    out: String,
}

impl Reader {
    /// `path` read the way `how` says, resolved: one `/` before each
    /// segment, none empty, a trailing `/` kept.
    fn read(&mut self, path: &str, how: u8) -> &str {
        self.bytes.clear();
        self.stack.clear();
        let raw = path.as_bytes();
        let mut i = usize::from(raw.first() == Some(&b'/'));
        let mut start = 0;
        let mut in_params = false;
        let mut trailing = false;
        while i <= raw.len() {
            let separator = if i == raw.len() {
                1
            } else {
                separator(&raw[i..], how)
            };
            if separator > 0 {
                trailing = self.end_segment(start, how);
                start = self.bytes.len();
                in_params = false;
                i += separator;
                continue;
            }
            if how & PARAMS != 0 && raw[i] == b';' {
                in_params = true;
            }
            let (byte, len) = match decoded(&raw[i..]) {
                Some(byte) if how & DECODE != 0 => (byte, 3),
                _ => (raw[i], 1),
            };
            if !in_params {
                self.bytes.push(byte);
            }
            i += len;
        }
        self.out.clear();
        for (from, to) in self.stack.iter().filter(|(from, to)| from != to) {
            self.out.push('/');
            self.out
                .push_str(&String::from_utf8_lossy(&self.bytes[*from..*to]));
        }
        if self.out.is_empty() || trailing {
            self.out.push('/');
        }
        &self.out
    }

    /// Resolves the segment `bytes[start..]` onto the stack; returns
    /// whether it leaves a trailing `/` (it was empty, `.` or `..`).
    fn end_segment(&mut self, start: usize, how: u8) -> bool {
        match &self.bytes[start..] {
            b"." => true,
            b".." => {
                self.stack.pop();
                true
            }
            b"" => {
                if how & MERGE_FIRST == 0 {
                    self.stack.push((start, start));
                }
                true
            }
            _ => {
                self.stack.push((start, self.bytes.len()));
                false
            }
        }
    }
}

/// The length of the separator `rest` starts with under `how`, or 0.
fn separator(rest: &[u8], how: u8) -> usize {
    let escaped =
        |hex: &[u8; 2]| rest.len() >= 3 && rest[0] == b'%' && rest[1..3].eq_ignore_ascii_case(hex);
    match rest[0] {
        b'/' => 1,
        b'\\' if how & BACKSLASH != 0 => 1,
        b'%' if how & ENCODED_SLASH != 0 && escaped(b"2f") => 3,
        b'%' if how & BACKSLASH != 0 && escaped(b"5c") => 3,
        _ => 0,
    }
}

/// The unreserved character `rest` starts with as `%XX`, if it does.
fn decoded(rest: &[u8]) -> Option<u8> {
    let [b'%', hi, lo, ..] = rest else {
        return None;
    };
    let hex = |b: &u8| char::from(*b).to_digit(16);
    let byte = u8::try_from(hex(hi)? * 16 + hex(lo)?).ok()?;
    is_unreserved(byte).then_some(byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reading of `path`, sorted and deduplicated.
    fn readings(path: &str) -> Vec<String> {
        let mut all = Vec::new();
        any_reading(path, |p| {
            all.push(p.to_owned());
            false
        });
        all.sort();
        all.dedup();
        all
    }

    #[test]
    fn plain_paths_have_one_reading_themselves() {
        for path in ["/", "/admin", "/admin/", "/a/b.c/d..e/.f", "/x y", "*"] {
            assert!(is_plain(path), "case {path}");
            assert_eq!(readings(path), [path], "case {path}");
        }
        for path in [
            "//a", "/a//b", "/./a", "/a/..", "/a/.", "/%61", "/a;b", "/a\\b",
        ] {
            assert!(!is_plain(path), "case {path}");
        }
    }

    #[test]
    fn dot_segments_and_escapes_resolve() {
        for (path, want) in [
            ("/a/../admin", &["/admin"][..]),
            ("/./admin/.", &["/admin/"]),
            ("/../../admin", &["/admin"]),
            ("/%61dmin", &["/%61dmin", "/admin"]),
            ("/%2e%2e/admin", &["/%2e%2e/admin", "/admin"]),
            ("/bad%zz", &["/bad%zz"]),
            ("/trailing%", &["/trailing%"]),
        ] {
            assert_eq!(readings(path), want, "case {path}");
        }
    }

    #[test]
    fn each_origins_choice_gets_its_reading() {
        for (path, want) in [
            ("/admin%2Fx", &["/admin%2Fx", "/admin/x"][..]),
            ("/x/..%2fadmin", &["/admin", "/x/..%2fadmin"]),
            ("/x/..%5Cadmin", &["/admin", "/x/..%5Cadmin"]),
            ("/x/..\\admin", &["/admin", "/x/..\\admin"]),
            ("/admin;x", &["/admin", "/admin;x"]),
            ("/x/..;/admin", &["/admin", "/x/..;/admin"]),
            ("/admin/..;/x", &["/admin/..;/x", "/x"]),
            ("/a//../b", &["/a/b", "/b"]),
            (
                "/admin/a%2f..%2f../../secret",
                &["/admin/secret", "/secret"],
            ),
        ] {
            assert_eq!(readings(path), want, "case {path}");
        }
    }

    #[test]
    fn a_path_too_long_to_read_every_way_is_denied() {
        let long = format!("/docs/{}", "a".repeat(MAX_READ_BYTES));
        assert!(!any_reading(&long, |p| p.starts_with("/admin")), "plain");
        let escaped = format!("/docs/{}%20", "a".repeat(MAX_READ_BYTES / 2 - 16));
        assert!(
            !any_reading(&escaped, |p| p.starts_with("/admin")),
            "two readings fit"
        );
        let tricky = format!("/docs/{}%2f;\\", "a".repeat(MAX_READ_BYTES / 16));
        assert!(any_reading(&tricky, |_| false), "32 readings do not");
    }

    #[test]
    fn a_path_is_read_at_most_once_per_choice_set() {
        let mut count = 0;
        any_reading("/a%2f;b\\c//d", |_| {
            count += 1;
            false
        });
        assert_eq!(count, 32);
        let mut count = 0;
        any_reading("/a;b", |_| {
            count += 1;
            false
        });
        assert_eq!(count, 4, "params and merging only");
    }
}

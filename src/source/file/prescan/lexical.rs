//! The byte-level rules of the pre-scan: line breaks, blanks, document
//! markers, quoted scalars, block scalar headers, character columns.

/// The lines of `text` without their breaks: `\n`, `\r\n`, `\r`, and the
/// Unicode breaks YAML also honours (U+0085, U+2028, U+2029).
pub(super) fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut i = 0;
        while i < text.len() {
            let len = match (text[i], text.get(i + 1), text.get(i + 2)) {
                (b'\n', _, _) => 1,
                (b'\r', Some(b'\n'), _) => 2,
                (b'\r', _, _) => 1,
                (0xC2, Some(0x85), _) => 2,
                (0xE2, Some(0x80), Some(0xA8 | 0xA9)) => 3,
                _ => 0,
            };
            if len > 0 {
                rest = Some(&text[i + len..]);
                return Some(&text[..i]);
            }
            i += 1;
        }
        rest = None;
        Some(text)
    })
}

/// A byte-order mark, in UTF-8.
pub(super) const BOM: &[u8] = "\u{feff}".as_bytes();

/// How many spaces and tabs `line` starts with.
pub(super) fn leading_blanks(line: &[u8]) -> usize {
    line.iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()
}

/// `---` or `...` followed by a blank or the end of the line.
pub(super) fn is_marker(line: &[u8]) -> bool {
    (line.starts_with(b"---") || line.starts_with(b"..."))
        && line.get(3).is_none_or(|&b| b == b' ' || b == b'\t')
}

/// The end of a quoted scalar closed by `quote` on this line, after the
/// closing quote; `None` when it goes on to the next line.
pub(super) fn quoted(line: &[u8], mut i: usize, quote: u8) -> Option<usize> {
    while i < line.len() {
        match line[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && line.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The content indentation a block scalar header (`|2-`, `>+1`) gives,
/// after the `|` or `>`: `None` when the first content line sets it.
pub(super) fn block_indent(header: &[u8], parent: isize) -> Option<usize> {
    let digit = header
        .iter()
        .take_while(|&&b| b.is_ascii_digit() || b == b'+' || b == b'-')
        .find(|b| b.is_ascii_digit())?;
    let increment = isize::from(digit - b'0');
    usize::try_from(parent.max(0) + increment).ok()
}

/// How many characters `bytes` holds (UTF-8 continuation bytes do not
/// start one).
pub(super) fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

//! Base64 (RFC 4648, standard alphabet, padded) as the Kubernetes API reads
//! a Secret's `data` and a ConfigMap's `binaryData`.
//!
//! Why here and not a crate: the file source needs only this decoder, and
//! it must accept exactly what the apiserver accepts (Go's
//! `base64.StdEncoding`): line breaks (`\r`, `\n`) are skipped, so a value
//! wrapped at 76 columns works; padding is required; any other byte, a
//! misplaced `=` or a truncated group is refused, with where it is.

/// Why a value is not base64.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Base64Error {
    /// A character outside the alphabet.
    #[error(
        "not base64: {found:?} at character {at} is not in the standard alphabet (A-Z a-z 0-9 + /)"
    )]
    Alphabet {
        /// Its position, counted from 0.
        at: usize,
        /// The character.
        found: char,
    },
    /// `=` where padding cannot be, or something after the padding.
    #[error("not base64: padding `=` may only end the value (character {at})")]
    Padding {
        /// Where, counted from 0.
        at: usize,
    },
    /// The value ends inside a group of four characters.
    #[error("not base64: the length is not a multiple of 4 (is the `=` padding missing?)")]
    Truncated,
}

/// The bytes `text` encodes.
pub(super) fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = [0u8; 4];
    let mut filled = 0;
    let mut padding = 0;
    let mut ended = false;
    for (at, found) in text.chars().enumerate() {
        if found == '\r' || found == '\n' {
            continue;
        }
        if ended {
            return Err(Base64Error::Padding { at });
        }
        group[filled] = match found {
            // Padding fills the last one or two places of the last group.
            '=' if filled >= 2 => {
                padding += 1;
                0
            }
            '=' => return Err(Base64Error::Padding { at }),
            _ if padding > 0 => return Err(Base64Error::Padding { at }),
            _ => sextet(found).ok_or(Base64Error::Alphabet { at, found })?,
        };
        filled += 1;
        if filled == 4 {
            let n = group.iter().fold(0u32, |n, &s| n << 6 | u32::from(s));
            out.extend_from_slice(&n.to_be_bytes()[1..4 - padding]);
            filled = 0;
            ended = padding > 0;
        }
    }
    if filled != 0 {
        return Err(Base64Error::Truncated);
    }
    Ok(out)
}

/// The six bits a character of the standard alphabet stands for.
fn sextet(c: char) -> Option<u8> {
    let value = match c {
        'A'..='Z' => c as u32 - 'A' as u32,
        'a'..='z' => c as u32 - 'a' as u32 + 26,
        '0'..='9' => c as u32 - '0' as u32 + 52,
        '+' => 62,
        '/' => 63,
        _ => return None,
    };
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_padding_length_and_wrapped_lines() {
        let cases: [(&str, &[u8]); 6] = [
            ("", b""),
            ("Zg==", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9v\nYmFy\r\n", b"foobar"),
            ("+/+/", &[0xfb, 0xff, 0xbf]),
        ];
        for (text, want) in cases {
            assert_eq!(decode(text).as_deref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_the_apiserver_refuses_saying_where() {
        let cases = [
            ("Zm9v!", Base64Error::Alphabet { at: 4, found: '!' }),
            ("Zm 9v", Base64Error::Alphabet { at: 2, found: ' ' }),
            ("Zm9vYg", Base64Error::Truncated),
            ("Z===", Base64Error::Padding { at: 1 }),
            ("Zg=a", Base64Error::Padding { at: 3 }),
            ("Zg==Zg==", Base64Error::Padding { at: 4 }),
            ("Zm9-", Base64Error::Alphabet { at: 3, found: '-' }),
            ("Zm9é", Base64Error::Alphabet { at: 3, found: 'é' }),
        ];
        for (text, want) in cases {
            assert_eq!(decode(text), Err(want), "{text:?}");
        }
    }
}

//! A linear pre-scan of a route file before the YAML parser sees it: how
//! deeply its documents nest.
//!
//! Why: the YAML parser's time grows with the square of the flow nesting
//! depth (`[[[[…`, `{a: {a: …`): a 120 KB file of nested brackets keeps a
//! core busy for seconds, and route files are parsed on every reload. This
//! scan looks at each byte once and follows the YAML scanner's rules for
//! where a token starts, so that brackets in comments, quoted scalars,
//! block scalars (`|`, `>`) and plain scalars do not count, while flow
//! collections (`[`, `{`) and block collections (each deeper indentation,
//! `- `, `? `, `key:`) do. Where it is unsure it counts, so a file it lets
//! through does not nest deeper for the parser.

use lexical::{block_indent, chars, is_marker, leading_blanks, lines, quoted, BOM};

/// The deepest nesting a route file may have, flow and block collections
/// together. A `LoadBalancerRoute` nests about 10 levels deep; the YAML
/// parser itself stops at 128, but only after reading the whole document.
pub const MAX_DEPTH: usize = 64;

/// Where a file first nests deeper than allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// The document, counted from 0 (as the parser's documents are).
    pub document: usize,
    /// The line, counted from 1.
    pub line: usize,
    /// The column, counted from 1, in characters.
    pub column: usize,
}

/// The deepest nesting of `text`'s documents; `Err` at the first place it
/// passes `max_depth` (the scan stops there).
pub fn nesting(text: &str, max_depth: usize) -> Result<usize, TooDeep> {
    let mut scan = Scan::new(max_depth);
    // The parser drops a byte-order mark that starts the text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, line) in lines(text.as_bytes()).enumerate() {
        scan.line(index + 1, line)?;
    }
    Ok(scan.deepest)
}

/// What the scan is inside of when a line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inside {
    /// Between tokens.
    Gap,
    /// A plain scalar; in a flow collection it may go on on the next line.
    Plain,
    /// A single-quoted scalar.
    Single,
    /// A double-quoted scalar.
    Double,
    /// The content of a block scalar: lines that are blank or indented at
    /// least `indent`, which the first non-blank line sets when no header
    /// gave it.
    Block {
        /// The content's indentation, once known.
        indent: Option<usize>,
        /// A content line is indented more than this.
        parent: isize,
        /// The deepest blank line before the first content line.
        blank: usize,
    },
}

/// A token that may be a mapping key, in block context.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// Its column: `key: value` makes it a block indentation.
    column: usize,
    /// The deepest flow nesting since it started (`[a]: b` is a mapping
    /// around a sequence).
    flow: usize,
}

/// The scanner's state between lines; constant work per byte.
struct Scan {
    max_depth: usize,
    deepest: usize,
    inside: Inside,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Columns of the open block collections (YAML's indentation stack).
    indents: Vec<usize>,
    /// A plain scalar in block context ended with the line; it goes on on
    /// a later line indented more than this.
    plain_continues: Option<isize>,
    /// The document being scanned, from 0.
    document: usize,
    /// The current document has content (so `---` starts another).
    started: bool,
    line: usize,
    /// Column of a token on this line that may be a mapping key, in block
    /// context (`key: value` makes its column a block indentation).
    key: Option<Key>,
    /// A token starting now may be a mapping key.
    key_allowed: bool,
    /// How far into the line columns are counted: (byte, column). Tokens
    /// are met left to right, so counting goes on from here and each byte
    /// is counted once.
    counted: (usize, usize),
}

impl Scan {
    fn new(max_depth: usize) -> Self {
        Scan {
            max_depth,
            deepest: 0,
            inside: Inside::Gap,
            flow: 0,
            indents: Vec::new(),
            plain_continues: None,
            document: 0,
            started: false,
            line: 0,
            key: None,
            key_allowed: true,
            counted: (0, 0),
        }
    }

    /// The block indentation, `-1` at the top level.
    fn indent(&self) -> isize {
        self.indents.last().map_or(-1, |&c| c as isize)
    }

    /// One line (without its break).
    fn line(&mut self, number: usize, line: &[u8]) -> Result<(), TooDeep> {
        self.line = number;
        self.key = None;
        self.counted = (0, 0);
        if self.flow == 0 {
            self.key_allowed = true;
        }
        if let Inside::Block { .. } = self.inside {
            if self.block_content(line) {
                return Ok(());
            }
            self.inside = Inside::Gap;
        }
        let blanks = leading_blanks(line);
        let Some(&first) = line.get(blanks) else {
            // A blank line continues whatever was open.
            return Ok(());
        };
        if blanks == 0 && is_marker(line) {
            return self.document_marker(line);
        }
        let column = chars(&line[..blanks]);
        let mut from = 0;
        match self.inside {
            Inside::Gap => match self.line_start(line, blanks, column, first) {
                Some(start) => from = start,
                None => return Ok(()),
            },
            Inside::Plain if first == b'#' => {
                self.inside = Inside::Gap;
                return Ok(());
            }
            Inside::Plain | Inside::Single | Inside::Double | Inside::Block { .. } => {}
        }
        self.plain_continues = None;
        self.scan(line, from)?;
        if self.inside == Inside::Plain && self.flow == 0 {
            self.inside = Inside::Gap;
            self.plain_continues = Some(self.indent());
        }
        Ok(())
    }

    /// Whether `line` is content of the block scalar being scanned: blank,
    /// or indented at least as its content (which its first non-blank line
    /// sets, unless its header did: at least one column, past the enclosing
    /// block collection and as deep as the blank lines before it).
    fn block_content(&mut self, line: &[u8]) -> bool {
        let Inside::Block {
            indent,
            parent,
            blank,
        } = &mut self.inside
        else {
            return false;
        };
        let spaces = line.iter().take_while(|&&b| b == b' ').count();
        if line[spaces..].iter().all(|&b| b == b' ' || b == b'\t') {
            if indent.is_none() {
                *blank = (*blank).max(spaces);
            }
            return true;
        }
        let least = usize::try_from(*parent + 1).unwrap_or(0).max(1);
        match indent {
            Some(indent) => spaces >= *indent,
            None if spaces >= least.max(*blank) => {
                *indent = Some(spaces);
                true
            }
            None => false,
        }
    }

    /// The first token of a line in the gap between tokens: a plain scalar
    /// going on from the line before, or a token that closes the block
    /// collections indented deeper. Returns where scanning starts, `None`
    /// for a line left blank.
    fn line_start(
        &mut self,
        line: &[u8],
        blanks: usize,
        column: usize,
        first: u8,
    ) -> Option<usize> {
        if self.flow == 0 {
            if let Some(indent) = self.plain_continues.take() {
                if column as isize > indent && first != b'#' {
                    // The plain scalar of the previous line goes on.
                    self.inside = Inside::Plain;
                    return Some(blanks);
                }
            }
        }
        let (blanks, column) = match line.strip_prefix(BOM) {
            // Between tokens a byte-order mark that starts a line is
            // skipped like a blank.
            Some(rest) if blanks == 0 => {
                let more = leading_blanks(rest);
                rest.get(more)?;
                (BOM.len() + more, 1 + more)
            }
            _ => (blanks, column),
        };
        // A comment closes nothing: the next token does.
        if self.flow == 0 && line[blanks] != b'#' {
            while self.indent() > column as isize {
                self.indents.pop();
            }
        }
        Some(blanks)
    }

    /// `---` or `...` at the start of a line: a document ends here (or the
    /// parser stops with an error); everything open closes.
    fn document_marker(&mut self, line: &[u8]) -> Result<(), TooDeep> {
        self.inside = Inside::Gap;
        self.flow = 0;
        self.indents.clear();
        self.plain_continues = None;
        if line[0] == b'-' {
            if self.started {
                self.document += 1;
            }
            self.started = true;
            self.key_allowed = false;
            self.scan(line, 3)
        } else {
            // Whatever follows `...` starts the next document.
            self.document += 1;
            self.started = false;
            Ok(())
        }
    }

    /// Scans `line` from byte `i` on.
    fn scan(&mut self, line: &[u8], mut i: usize) -> Result<(), TooDeep> {
        while i < line.len() {
            i = match self.inside {
                Inside::Gap => self.token(line, i)?,
                Inside::Plain => self.plain(line, i),
                Inside::Single => quoted(line, i, b'\'').map_or(line.len(), |end| {
                    self.inside = Inside::Gap;
                    end
                }),
                Inside::Double => quoted(line, i, b'"').map_or(line.len(), |end| {
                    self.inside = Inside::Gap;
                    end
                }),
                Inside::Block { .. } => line.len(),
            };
        }
        Ok(())
    }

    /// At a token's first byte (or a blank before it); returns where the
    /// scan goes on.
    fn token(&mut self, line: &[u8], i: usize) -> Result<usize, TooDeep> {
        let b = line[i];
        let blank_after = line.get(i + 1).is_none_or(|&n| n == b' ' || n == b'\t');
        if b == b' ' || b == b'\t' {
            return Ok(i + 1);
        }
        let column = self.column(line, i);
        self.started = true;
        let block = self.flow == 0;
        match b {
            b'#' => return Ok(line.len()),
            b'%' if i == 0 => return Ok(line.len()),
            b'[' | b'{' => {
                self.key_token(column);
                self.flow += 1;
                if let Some(key) = &mut self.key {
                    key.flow = key.flow.max(self.flow);
                }
                self.deeper(column, self.flow)?;
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.key_allowed = false;
            }
            // In a flow collection these belong to it: the block key, if
            // any, waits for the collection to close.
            b',' | b'?' | b':' if !block => {}
            b'-' if !block && blank_after => {}
            b',' => {
                self.key = None;
                self.key_allowed = true;
            }
            b'-' | b'?' if blank_after => {
                self.roll(column)?;
                self.key = None;
                self.key_allowed = true;
            }
            b':' if blank_after => match self.key.take() {
                Some(key) => {
                    self.roll_key(key)?;
                    self.key_allowed = false;
                }
                None => {
                    self.roll(column)?;
                    self.key_allowed = true;
                }
            },
            b'|' | b'>' if block => {
                self.inside = Inside::Block {
                    indent: block_indent(&line[i + 1..], self.indent()),
                    parent: self.indent(),
                    blank: 0,
                };
                return Ok(line.len());
            }
            b'\'' | b'"' => {
                self.key_token(column);
                self.inside = if b == b'\'' {
                    Inside::Single
                } else {
                    Inside::Double
                };
            }
            b'&' | b'*' | b'!' => {
                // An anchor or alias (a name of letters, digits, `_`, `-`)
                // or a tag (to a blank or flow indicator).
                self.key_token(column);
                let name = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
                let tag = |c: u8| !matches!(c, b' ' | b'\t' | b',' | b'[' | b']' | b'{' | b'}');
                let len = line[i + 1..]
                    .iter()
                    .take_while(|&&c| if b == b'!' { tag(c) } else { name(c) })
                    .count();
                return Ok(i + 1 + len);
            }
            _ => {
                self.key_token(column);
                self.inside = Inside::Plain;
            }
        }
        Ok(i + 1)
    }

    /// Inside a plain scalar at byte `i`: it ends at `: `, ` #`, and in a
    /// flow collection at `,[]{}`; returns where the scan goes on.
    fn plain(&mut self, line: &[u8], mut i: usize) -> usize {
        while i < line.len() {
            let b = line[i];
            let blank_after = line.get(i + 1).is_none_or(|&n| n == b' ' || n == b'\t');
            let blank_before = i == 0 || line[i - 1] == b' ' || line[i - 1] == b'\t';
            let ends = (b == b':' && blank_after)
                || (b == b'#' && blank_before)
                || (self.flow > 0 && b",[]{}".contains(&b));
            if ends {
                self.inside = Inside::Gap;
                return i;
            }
            i += 1;
        }
        i
    }

    /// The column of byte `i` of `line`, counted on from the last one asked
    /// for (never further left).
    fn column(&mut self, line: &[u8], i: usize) -> usize {
        let (byte, column) = self.counted;
        let column = column + chars(&line[byte.min(i)..i]);
        self.counted = (i, column);
        column
    }

    /// A token that may be a mapping key starts at `column`.
    fn key_token(&mut self, column: usize) {
        if self.flow == 0 && self.key_allowed {
            self.key = Some(Key { column, flow: 0 });
        }
        self.key_allowed = false;
    }

    /// A block collection at `column`, if that is deeper than the current
    /// indentation (flow collections have none).
    fn roll(&mut self, column: usize) -> Result<(), TooDeep> {
        if self.flow == 0 && column as isize > self.indent() {
            self.indents.push(column);
            self.deeper(column, 0)?;
        }
        Ok(())
    }

    /// `key:` made the key's column a block collection, around whatever the
    /// key nests.
    fn roll_key(&mut self, key: Key) -> Result<(), TooDeep> {
        if self.flow == 0 && key.column as isize > self.indent() {
            self.indents.push(key.column);
            self.deeper(key.column, key.flow)?;
        }
        Ok(())
    }

    /// Nesting grew at `column`, with `flow` flow collections open inside
    /// the block ones: still within bounds?
    fn deeper(&mut self, column: usize, flow: usize) -> Result<(), TooDeep> {
        let depth = self.flow.max(flow) + self.indents.len();
        self.deepest = self.deepest.max(depth);
        if depth > self.max_depth {
            return Err(TooDeep {
                document: self.document,
                line: self.line,
                column: column + 1,
            });
        }
        Ok(())
    }
}

mod lexical;
#[cfg(test)]
mod tests;

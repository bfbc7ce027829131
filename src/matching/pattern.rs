//! Regular expressions of path and header conditions: a [`Pattern`]
//! matches a whole string, and [`Regexes`] compiles each pattern text once
//! per table, reusing the previous table's (compile's costliest step: a
//! table of 10,000 routes has thousands of them).
//!
//! Compiled for `is_match` only, with the regex crate's own engine
//! (`regex-automata`'s meta regex, as `regex::Regex` wraps it) but neither
//! capture groups nor a fully built DFA: matching uses the lazy DFA, as a
//! `regex::Regex` does for any pattern too large for a full one, and each
//! pattern builds in a sixth of the time and holds under half the memory.

use std::collections::HashMap;
use std::sync::Arc;

use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;

use crate::api::values::{parse_anchored_regex, RegexError};

/// A compiled regular expression that must match all of a string.
#[derive(Debug)]
pub struct Pattern {
    /// The pattern as written (compiled as `^(?:source)$`).
    source: Box<str>,
    regex: meta::Regex,
}

impl Pattern {
    /// Compiles `source` to match whole strings; the error speaks of the
    /// pattern as written.
    pub fn new(source: &str) -> Result<Self, RegexError> {
        let config = meta::Regex::config()
            .which_captures(WhichCaptures::None)
            .dfa(false)
            .onepass(false);
        let anchored = format!("^(?:{source})$");
        match meta::Regex::builder().configure(config).build(&anchored) {
            Ok(regex) => Ok(Pattern {
                source: source.into(),
                regex,
            }),
            // The regex crate words the error as users know it.
            Err(e) => Err(parse_anchored_regex(source)
                .err()
                .unwrap_or_else(|| RegexError {
                    pattern: source.to_owned(),
                    what: e.to_string(),
                })),
        }
    }

    /// Whether all of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Compiled patterns by text, shared by every condition that writes the
/// same one; a table keeps those it used for the next compile.
#[derive(Debug, Default)]
pub struct Regexes<'p> {
    /// The previous table's patterns.
    previous: Option<&'p RegexStore>,
    /// The patterns of this compile so far.
    used: HashMap<Arc<str>, Arc<Pattern>>,
    /// The patterns asked for since [`Regexes::take_asked`] (one route's).
    asked: Vec<Arc<Pattern>>,
}

impl<'p> Regexes<'p> {
    /// A store that reuses the patterns of `previous` (see
    /// [`Regexes::finish`]).
    pub fn carried(previous: &'p RegexStore) -> Self {
        Regexes {
            previous: Some(previous),
            used: HashMap::new(),
            asked: Vec::new(),
        }
    }

    /// `source` compiled: this compile's, the previous table's, or new.
    /// A pattern that does not compile is tried again every time (rare;
    /// its route is refused).
    pub fn compile(&mut self, source: &str) -> Result<Arc<Pattern>, RegexError> {
        let pattern = match self.used.get(source) {
            Some(known) => known.clone(),
            None => {
                let pattern = match self.previous.and_then(|p| p.0.get(source)) {
                    Some(known) => known.clone(),
                    None => Arc::new(Pattern::new(source)?),
                };
                self.used.insert(source.into(), pattern.clone());
                pattern
            }
        };
        self.asked.push(pattern.clone());
        Ok(pattern)
    }

    /// The patterns asked for since the last call (one route's, for a
    /// later compile that reuses the route without compiling it).
    pub fn take_asked(&mut self) -> Vec<Arc<Pattern>> {
        std::mem::take(&mut self.asked)
    }

    /// Counts `patterns` (a reused route's) as used by this compile.
    pub fn keep(&mut self, patterns: &[Arc<Pattern>]) {
        for pattern in patterns {
            let source: Arc<str> = pattern.as_str().into();
            self.used.entry(source).or_insert_with(|| pattern.clone());
        }
    }

    /// The patterns this compile used, for the next one.
    pub fn finish(self) -> RegexStore {
        RegexStore(self.used)
    }
}

/// The patterns a table's conditions use, by text, handed to the next
/// compile.
#[derive(Debug, Default)]
pub struct RegexStore(HashMap<Arc<str>, Arc<Pattern>>);

impl RegexStore {
    /// The compiled `source`, if the table has it.
    pub fn get(&self, source: &str) -> Option<&Arc<Pattern>> {
        self.0.get(source)
    }

    /// How many distinct patterns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

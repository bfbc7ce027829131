//! Pre-scan tests: what counts as nesting and what does not.

use super::*;

#[test]
fn flow_and_block_collections_count_and_scalars_do_not() {
    for (text, want) in [
        ("[[a]]", 2),
        ("a: {b: [c]}", 3),
        ("a:\n  b:\n    - c\n", 3),
        ("- - - x", 3),
        ("a: '[[[['", 1),
        ("a: \"[[\\\"[[\"", 1),
        ("[a, 'it''s [', \"[\"]", 1),
        ("# [[[[\na: b", 1),
        ("a: x[[[[ # [[[\n", 1),
        ("a: b\n  [[[c\n", 1),
        ("a: |\n  [[[[\n  {{{{\nb: c", 1),
        ("a: >-\n\n    [[\n      {{\nb: c\n", 1),
        ("a: >-\n    [[\n  b: [[\n", 4),
        ("---\n[[a]]\n---\n[a]\n", 2),
        ("\u{feff}[[a]]", 2),
        ("[a]: b", 2),
        ("a: &x [b, *x]", 2),
    ] {
        assert_eq!(nesting(text, MAX_DEPTH), Ok(want), "case {text:?}");
    }
}

#[test]
fn nesting_past_the_limit_names_the_document_line_and_column() {
    assert_eq!(nesting(&"[".repeat(64), 64), Ok(64));
    assert_eq!(
        nesting(&format!("a: b\n---\nc:\n  {}", "[".repeat(64)), 64),
        Err(TooDeep {
            document: 1,
            line: 4,
            column: 66
        })
    );
    let block: String = (0..65).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    assert_eq!(
        nesting(&block, 64),
        Err(TooDeep {
            document: 0,
            line: 65,
            column: 65
        })
    );
}

#[test]
fn a_long_line_of_many_tokens_is_scanned_in_one_pass() {
    // Columns are counted on, not from the line start per token.
    let wide = format!("[{}]", "a, ".repeat(1_000_000));
    assert_eq!(nesting(&wide, MAX_DEPTH), Ok(1));
}

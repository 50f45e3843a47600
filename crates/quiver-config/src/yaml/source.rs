//! Turning a file's text into YAML nodes, without losing duplicate keys.
//!
//! saphyr's loader refuses a mapping with a repeated key, and it does so with a
//! single fatal error that carries a position but no path, and stops there. The
//! rest of the file would then go unchecked. So when the loader reports a
//! duplicate, the later key is renamed in place — prefixed with a private-use
//! character that the text does not otherwise contain — and the text is parsed
//! again. [`Reader::entries`](super::Reader::entries) recognises the prefix and
//! reports the duplicate with its full path, alongside every other error.
//! Nothing but that one character is inserted, so line numbers are unchanged;
//! columns of later syntax errors on the same line are corrected for it.

use saphyr::{LoadableYamlNode, MarkedYaml, ScanError};

/// The loader's message for a repeated key (saphyr 0.3). Should it ever change,
/// duplicates simply surface as syntax errors again.
const DUPLICATE_KEY: &str = "duplicated key in mapping";

/// Upper bound on renames, so a pathological file cannot make us reparse forever.
const MAX_RENAMES: usize = 1_000;

/// Text that loads, and how duplicates were marked in it.
pub(super) struct Prepared {
    pub(super) text: String,
    /// Prefix of every renamed (later, duplicate) key; `None` when none was renamed.
    pub(super) duplicate_mark: Option<char>,
}

/// A YAML syntax error, positioned in the caller's original text.
pub(super) struct Position {
    pub(super) line: usize,
    /// 1-based, in characters.
    pub(super) col: usize,
    pub(super) message: String,
}

/// The position of a loader error in text that had no marks inserted.
pub(super) fn unmarked_position(error: &ScanError, text: &str) -> Position {
    original_position(error, &[], text)
}

/// Where a mark was inserted: line, and char index in the current text.
struct Insertion {
    line: usize,
    index: usize,
}

/// Parses `text` until it loads, renaming duplicate keys as they are reported.
///
/// The caller parses [`Prepared::text`] once more to get nodes that borrow
/// from it; returning them from here would need the text to outlive this loop.
pub(super) fn prepare(text: &str) -> Result<Prepared, Position> {
    bounded(text)?;
    let mark = unused_private_char(text);
    let mut current = text.to_owned();
    let mut insertions: Vec<Insertion> = Vec::new();
    loop {
        let error = match MarkedYaml::load_from_str(&current) {
            Ok(_) => {
                return Ok(Prepared {
                    text: current,
                    duplicate_mark: mark.filter(|_| !insertions.is_empty()),
                })
            }
            Err(error) => error,
        };
        let renamed = match mark {
            Some(mark) if error.info() == DUPLICATE_KEY && insertions.len() < MAX_RENAMES => {
                insert_mark(&mut current, &error, mark)
            }
            _ => None,
        };
        match renamed {
            Some(index) => {
                for earlier in &mut insertions {
                    if earlier.index >= index {
                        earlier.index += 1;
                    }
                }
                insertions.push(Insertion {
                    line: error.marker().line(),
                    index,
                });
            }
            None => return Err(original_position(&error, &insertions, &current)),
        }
    }
}

/// The deepest nesting of sequences and mappings a file may have.
pub(super) const MAX_DEPTH: usize = 64;

/// The most a file may expand to through its aliases — values, and bytes of
/// scalar text — counting an alias as what the node it names costs: a few
/// kilobytes of aliases to aliases cannot expand into gigabytes.
pub(super) const MAX_NODES: u64 = 1_000_000;
pub(super) const MAX_EXPANDED_BYTES: u64 = 64 << 20;

/// Walks `text`'s events once, before anything is built from it, and refuses
/// nesting deeper than [`MAX_DEPTH`] (building such a tree would exhaust the
/// stack) and more than [`MAX_NODES`] values or [`MAX_EXPANDED_BYTES`] of
/// scalar text once aliases are expanded.
fn bounded(text: &str) -> Result<(), Position> {
    use saphyr_parser::{Event, Parser};
    /// (values, scalar bytes), as expanded.
    type Cost = (u64, u64);
    // Per open collection: its anchor and the cost where it began.
    let mut open: Vec<(usize, Cost)> = Vec::new();
    // Expanded cost of every anchored node, by anchor id.
    let mut sizes: std::collections::HashMap<usize, Cost> = std::collections::HashMap::new();
    let mut total: Cost = (0, 0);
    for event in Parser::new_from_str(text) {
        // A syntax error is the loader's to report, with its own wording.
        let Ok((event, span)) = event else {
            return Ok(());
        };
        let refuse = |message: String| Position {
            line: span.start.line(),
            col: span.start.col() + 1,
            message,
        };
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(refuse(format!("nested more than {MAX_DEPTH} levels deep")));
                }
                total.0 += 1;
                open.push((anchor, total));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, began)) = open.pop() {
                    if anchor != 0 {
                        sizes.insert(anchor, (total.0 - began.0 + 1, total.1 - began.1));
                    }
                }
            }
            Event::Scalar(value, _, anchor, _) => {
                let cost = (1, value.len() as u64);
                total = (total.0 + cost.0, total.1 + cost.1);
                if anchor != 0 {
                    sizes.insert(anchor, cost);
                }
            }
            Event::Alias(anchor) => {
                let (values, bytes) = sizes.get(&anchor).copied().unwrap_or((1, 0));
                total = (
                    total.0.saturating_add(values),
                    total.1.saturating_add(bytes),
                );
            }
            _ => {}
        }
        if total.0 > MAX_NODES || total.1 > MAX_EXPANDED_BYTES {
            return Err(refuse(format!(
                "expands to more than {MAX_NODES} values or {MAX_EXPANDED_BYTES} bytes once aliases are expanded"
            )));
        }
    }
    Ok(())
}

/// A private-use character absent from `text`, so a renamed key cannot be
/// confused with a real one.
fn unused_private_char(text: &str) -> Option<char> {
    ('\u{E000}'..='\u{F8FF}').find(|c| !text.contains(*c))
}

/// Inserts `mark` at the start of the key the loader flagged; returns the char
/// index of the insertion, or `None` if the key is not a plain or quoted scalar
/// (complex keys, aliases), which is then left to be reported as a syntax error.
fn insert_mark(text: &mut String, error: &ScanError, mark: char) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut at = error.marker().index();
    // The marker sits on the key's properties (anchor, tag) when it has any.
    while let Some(&(_, c)) = chars.get(at) {
        if c != '&' && c != '!' {
            break;
        }
        while chars.get(at).is_some_and(|&(_, c)| !c.is_whitespace()) {
            at += 1;
        }
        while chars.get(at).is_some_and(|&(_, c)| c == ' ' || c == '\t') {
            at += 1;
        }
    }
    let &(_, first) = chars.get(at)?;
    match first {
        '"' | '\'' => at += 1,
        '?' | '[' | '{' | '*' | '\n' | '\r' => return None,
        _ => {}
    }
    let byte = chars.get(at).map_or(text.len(), |&(b, _)| b);
    text.insert(byte, mark);
    Some(at)
}

/// The error's position in the original text (`text` is the current one, with
/// `insertions`): line as is, column less the marks inserted before it on its
/// line. The loader puts an error at the end of the input on the line after
/// the last one (as if a line break followed it), a line the file does not
/// have; such an error is placed just after the last line's text instead.
fn original_position(error: &ScanError, insertions: &[Insertion], text: &str) -> Position {
    let marker = error.marker();
    let (last, last_len) = last_line(text);
    let (line, col, index) = if marker.line() > last {
        (last, last_len, usize::MAX)
    } else {
        (marker.line().max(1), marker.col(), marker.index())
    };
    let shift = insertions
        .iter()
        .filter(|i| i.line == line && i.index < index)
        .count();
    Position {
        line,
        col: col.saturating_sub(shift) + 1,
        message: error.info().to_owned(),
    }
}

/// The number of the last line of `text` and its length in chars. Lines end
/// at `\n`, `\r\n` or `\r`, as in YAML; a break that ends the text starts
/// no further line.
pub(super) fn last_line(text: &str) -> (usize, usize) {
    let (mut line, mut len, mut previous) = (1, 0, 0);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            line += 1;
            previous = len;
            len = 0;
        } else {
            len += 1;
        }
    }
    if len > 0 || line == 1 {
        (line, len)
    } else {
        (line - 1, previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(text: &str) -> String {
        match prepare(text) {
            Ok(source) => source.text,
            Err(e) => format!("error {}:{}: {}", e.line, e.col, e.message),
        }
    }

    #[test]
    fn renames_every_later_duplicate_whatever_its_style() {
        let m = '\u{E000}';
        assert_eq!(renamed("a: 1\nb: 2\n"), "a: 1\nb: 2\n");
        assert_eq!(
            renamed("a: 1\na: 2\na: 3\n"),
            format!("a: 1\n{m}a: 2\n{m}{m}a: 3\n")
        );
        assert_eq!(renamed("a: 1\n'a': 2\n"), format!("a: 1\n'{m}a': 2\n"));
        assert_eq!(renamed("a: 1\n&k a: 2\n"), format!("a: 1\n&k {m}a: 2\n"));
        assert_eq!(
            renamed("a: 1\n!!str a: 2\n"),
            format!("a: 1\n!!str {m}a: 2\n")
        );
        assert_eq!(
            renamed("x: {a: 1, \"a\": 2}\n"),
            format!("x: {{a: 1, \"{m}a\": 2}}\n")
        );
        assert_eq!(renamed("é: 1\né: 2\n"), format!("é: 1\n{m}é: 2\n"));
    }

    #[test]
    fn avoids_marks_the_text_already_uses() {
        let text = "\u{E000}: 1\na: 1\na: 2\n";
        let source = prepare(text).ok().map(|s| (s.text, s.duplicate_mark));
        assert_eq!(
            source,
            Some((
                "\u{E000}: 1\na: 1\n\u{E001}a: 2\n".to_owned(),
                Some('\u{E001}')
            ))
        );
    }

    #[test]
    fn errors_at_the_end_are_on_the_last_line() {
        for (text, at) in [
            ("a: 1\nb", "error 2:2: "),
            ("a: 1\nb\n", "error 2:2: "),
            ("a: 1\r\nb\r\n", "error 2:2: "),
            ("a: [1,\n  2\n", "error 2:4: "),
            ("quiver: [\n", "error 1:10: "),
            // After a renamed duplicate.
            ("a: 1\na: 1\nb", "error 3:2: "),
        ] {
            let error = renamed(text);
            assert!(error.starts_with(at), "{text:?}: {error}");
        }
        assert_eq!(last_line(""), (1, 0));
        assert_eq!(last_line("ab"), (1, 2));
        assert_eq!(last_line("ab\r\n"), (1, 2));
        assert_eq!(last_line("a\rbc\r"), (2, 2));
        assert_eq!(last_line("a\n\n"), (2, 0));
    }

    #[test]
    fn syntax_error_columns_ignore_inserted_marks() {
        // Without the correction the `]` would be reported one column late.
        assert_eq!(
            renamed("{a: 1, a: 2, b: ]}\n"),
            renamed("{a: 1, c: 2, b: ]}\n")
        );
        assert_eq!(
            renamed("a: [1, 2\nb: 3\n"),
            "error 2:2: illegal placement of ':' indicator"
        );
    }
}

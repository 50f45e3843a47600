//! Turning a file's text into YAML nodes, without losing duplicate keys.
//!
//! saphyr's loader refuses a mapping with a repeated key, and it does so with a
//! single fatal error that carries a position but no path, and stops there. The
//! rest of the file would then go unchecked. So the loader is fed the parser's
//! events through [`Renamer`], which keeps the keys of every open mapping in a
//! hash set and hands a repeated key on renamed: a private-use character that
//! the text does not contain, then the repeat's number, its first
//! occurrence's line and its own text, each separated by that character.
//! [`Reader::entries`](super::Reader::entries) recognises the prefix and
//! reports the duplicate with its full path, alongside every other error. One
//! pass over the events, one hash look-up per key: a mapping of `n` keys costs
//! O(n) however many of them repeat.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, ScalarStyle, ScanError, Yaml, YamlLoader};
use saphyr_parser::{Event, Parser, Span, SpannedEventReceiver};

/// How a text's duplicate keys were marked.
pub(super) struct Prepared {
    /// Prefix of every renamed (later, duplicate) key; `None` when the text
    /// uses every private-use character, so none could be renamed.
    pub(super) duplicate_mark: Option<char>,
}

/// A YAML syntax error, positioned in the caller's text.
pub(super) struct Position {
    pub(super) line: usize,
    /// 1-based, in characters.
    pub(super) col: usize,
    pub(super) message: String,
}

/// The position of a loader error in `text`. The loader puts an error at
/// the end of the input on the line after the last one (as if a line break
/// followed it), a line the file does not have; such an error is placed just
/// after the last line's text instead.
pub(super) fn error_position(error: &ScanError, text: &str) -> Position {
    let marker = error.marker();
    let (last, last_len) = last_line(text);
    let (line, col) = if marker.line() > last {
        (last, last_len)
    } else {
        (marker.line().max(1), marker.col())
    };
    Position {
        line,
        col: col + 1,
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

/// Checks that `text` is within bounds and loads, and picks the mark its
/// duplicate keys get.
pub(super) fn prepare(text: &str) -> Result<Prepared, Position> {
    bounded(text)?;
    let mark = unused_private_char(text);
    load(text, mark).map_err(|e| error_position(&e, text))?;
    Ok(Prepared {
        duplicate_mark: mark,
    })
}

/// The documents of `text`, repeated keys renamed with `mark` (see the module
/// docs). Without a mark a repeated key is the loader's syntax error.
pub(super) fn load(text: &str, mark: Option<char>) -> Result<Vec<MarkedYaml<'_>>, ScanError> {
    let mut renamer = Renamer {
        loader: YamlLoader::default(),
        mark,
        open: Vec::new(),
        anchored_keys: HashMap::new(),
        renamed: 0,
    };
    Parser::new_from_str(text).load(&mut renamer, true)?;
    if let Some(error) = renamer.loader.error() {
        return Err(error.clone());
    }
    Ok(renamer.loader.into_documents())
}

/// The parts of a renamed key: the original key's text and the line of its
/// first occurrence in the mapping.
pub(super) fn renamed_parts(name: &str, mark: char) -> Option<(&str, usize)> {
    let mut parts = name.strip_prefix(mark)?.splitn(3, mark);
    let _number = parts.next()?;
    let first = parts.next()?.parse().ok()?;
    Some((parts.next()?, first))
}

/// An open collection, as far as key positions are concerned.
enum Open<'input> {
    Sequence,
    Mapping {
        /// The next node completes a key (else a value).
        at_key: bool,
        /// Each scalar key seen, as the loader compares keys, and its line.
        keys: HashMap<MarkedYaml<'input>, usize>,
    },
}

/// Forwards events to saphyr's loader, renaming the later keys of a mapping
/// that repeat an earlier one.
struct Renamer<'input> {
    loader: YamlLoader<'input, MarkedYaml<'input>>,
    mark: Option<char>,
    open: Vec<Open<'input>>,
    /// Anchored scalars, so an alias used as a key compares as its scalar:
    /// the key as the loader sees it, and its text.
    anchored_keys: HashMap<usize, (MarkedYaml<'input>, Cow<'input, str>)>,
    /// Keys renamed so far: each renamed key is numbered, so two repeats of
    /// one key stay distinct from each other.
    renamed: usize,
}

impl<'input> Renamer<'input> {
    /// Whether the next node is a key of the innermost open mapping.
    fn at_key(&self) -> bool {
        matches!(self.open.last(), Some(Open::Mapping { at_key: true, .. }))
    }

    /// A node of the innermost collection is complete.
    fn completed(&mut self) {
        if let Some(Open::Mapping { at_key, .. }) = self.open.last_mut() {
            *at_key = !*at_key;
        }
    }

    /// The renamed scalar for key `key` (written `text`, at `line`, with
    /// `anchor`) when the innermost mapping already has it; `None` records
    /// it as seen.
    fn rename(
        &mut self,
        key: MarkedYaml<'input>,
        text: &str,
        line: usize,
        anchor: usize,
    ) -> Option<Event<'input>> {
        let mark = self.mark?;
        let Some(Open::Mapping { keys, .. }) = self.open.last_mut() else {
            return None;
        };
        let first = match keys.entry(key) {
            Entry::Occupied(first) => *first.get(),
            Entry::Vacant(slot) => {
                slot.insert(line);
                return None;
            }
        };
        self.renamed += 1;
        let name = format!("{mark}{}{mark}{first}{mark}{text}", self.renamed);
        Some(Event::Scalar(
            Cow::Owned(name),
            ScalarStyle::SingleQuoted,
            anchor,
            None,
        ))
    }
}

impl<'input> SpannedEventReceiver<'input> for Renamer<'input> {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        let at_key = self.at_key();
        let line = span.start.line();
        let event = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let mut renamed = None;
                if at_key || anchor != 0 {
                    // Compared exactly as the loader will compare the node.
                    let key = MarkedYaml::from_bare_yaml(Yaml::value_from_cow_and_metadata(
                        text.clone(),
                        style,
                        tag.as_ref(),
                    ));
                    if anchor != 0 {
                        self.anchored_keys
                            .insert(anchor, (key.clone(), text.clone()));
                    }
                    if at_key {
                        renamed = self.rename(key, &text, line, anchor);
                    }
                }
                self.completed();
                renamed.unwrap_or(Event::Scalar(text, style, anchor, tag))
            }
            Event::Alias(id) => {
                let renamed = match self.anchored_keys.get(&id) {
                    Some((key, text)) if at_key => {
                        let (key, text) = (key.clone(), text.clone());
                        self.rename(key, &text, line, 0)
                    }
                    _ => None,
                };
                self.completed();
                renamed.unwrap_or(Event::Alias(id))
            }
            Event::SequenceStart(..) => {
                self.open.push(Open::Sequence);
                event
            }
            Event::MappingStart(..) => {
                self.open.push(Open::Mapping {
                    at_key: true,
                    keys: HashMap::new(),
                });
                event
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.open.pop();
                self.completed();
                event
            }
            other => other,
        };
        self.loader.on_event(event, span);
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
/// confused with a real one. One pass over the text, whatever it holds.
fn unused_private_char(text: &str) -> Option<char> {
    const FIRST: u32 = 0xE000;
    const LAST: u32 = 0xF8FF;
    let mut used = vec![false; (LAST - FIRST + 1) as usize];
    for c in text.chars() {
        if let Some(slot) = (c as u32)
            .checked_sub(FIRST)
            .and_then(|i| used.get_mut(i as usize))
        {
            *slot = true;
        }
    }
    used.iter()
        .position(|seen| !seen)
        .and_then(|i| char::from_u32(FIRST + i as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of `text`'s mapping as loaded, renamed ones shown as
    /// `dup(text, first line)`.
    fn keys(text: &str) -> Vec<String> {
        let mark = unused_private_char(text);
        let docs = match load(text, mark) {
            Ok(docs) => docs,
            Err(e) => return vec![format!("error {}", e.info())],
        };
        let Some(saphyr::YamlData::Mapping(map)) = docs.first().map(|d| &d.data) else {
            return Vec::new();
        };
        map.keys()
            .map(|k| match &k.data {
                saphyr::YamlData::Value(saphyr::Scalar::String(s)) => {
                    match mark.and_then(|m| renamed_parts(s, m)) {
                        Some((text, first)) => format!("dup({text}, {first})"),
                        None => s.to_string(),
                    }
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn renames_every_later_duplicate_whatever_its_style() {
        assert_eq!(keys("a: 1\nb: 2\n"), ["a", "b"]);
        assert_eq!(keys("a: 1\na: 2\na: 3\n"), ["a", "dup(a, 1)", "dup(a, 1)"]);
        assert_eq!(keys("a: 1\n'a': 2\n"), ["a", "dup(a, 1)"]);
        assert_eq!(keys("a: 1\n&k a: 2\n"), ["a", "dup(a, 1)"]);
        assert_eq!(keys("a: 1\n!!str a: 2\n"), ["a", "dup(a, 1)"]);
        assert_eq!(keys("é: 1\né: 2\n"), ["é", "dup(é, 1)"]);
        // On one line, and through an alias to a scalar key.
        assert_eq!(keys("{a: 1, \"a\": 2}\n"), ["a", "dup(a, 1)"]);
        assert_eq!(keys("&k a: 1\nb: 2\n*k : 3\n"), ["a", "b", "dup(a, 1)"]);
        // Keys compare as values: `1` and `"1"` differ, `1` and `0x1` do not.
        assert_eq!(
            keys("1: a\n\"1\": b\n0x1: c\n"),
            ["Value(Integer(1))", "1", "dup(0x1, 1)"]
        );
        // Each mapping has its own keys.
        let nested = "x: {a: 1}\ny: {a: 2}\n";
        assert_eq!(keys(nested), ["x", "y"]);
    }

    #[test]
    fn avoids_marks_the_text_already_uses() {
        assert_eq!(unused_private_char("a"), Some('\u{E000}'));
        assert_eq!(unused_private_char("\u{E000}\u{E002}"), Some('\u{E001}'));
        let all: String = ('\u{E000}'..='\u{F8FF}').collect();
        assert_eq!(unused_private_char(&all), None);
        // Without a mark, a repeat is left to the loader.
        assert_eq!(
            load(&format!("# {all}\na: 1\na: 2\n"), None)
                .err()
                .map(|e| e.info().to_owned()),
            Some("duplicated key in mapping".to_owned())
        );
        let text = "\u{E000}: 1\na: 1\na: 2\n";
        assert_eq!(keys(text), ["\u{E000}", "a", "dup(a, 2)"]);
    }

    #[test]
    fn syntax_errors_are_positioned_in_the_text() {
        let error = |text: &str| match prepare(text) {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{}:{}: {}", e.line, e.col, e.message),
        };
        assert_eq!(error("{a: 1, a: 2, b: ]}\n"), error("{a: 1, c: 2, b: ]}\n"));
        assert_eq!(
            error("a: [1, 2\nb: 3\n"),
            "2:2: illegal placement of ':' indicator"
        );
    }

    #[test]
    fn many_repeats_load_in_one_pass() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("k{}: {i}\n", i % 2));
        }
        let started = std::time::Instant::now();
        let loaded = keys(&text);
        assert_eq!(loaded.len(), 20_000);
        assert_eq!(loaded[19_999], "dup(k1, 2)");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

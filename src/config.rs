//! Reading a TOML config file into typed sections, with every error tied to
//! the line of the key it is about.
//!
//! Sections flatten shared option groups, and serde's flatten buffers the
//! whole table before the groups see it, so its errors lose their place.
//! The place is found again here: unknown keys are checked against the keys
//! the section's type writes out, and a bad value is found by reading the
//! section one key at a time.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::UsageError;
use crate::options::OptionError;

/// A parsed config file.
pub struct Doc<'a> {
    text: &'a str,
    origin: String,
    root: Spanned<DeTable<'a>>,
}

/// A table read from the file, with what is needed to place later errors
/// about its values.
pub struct Located<'d, T> {
    /// The typed section.
    pub value: T,
    /// Its table in the file, if the file has it.
    table: Option<&'d Spanned<DeValue<'d>>>,
    /// The line of its header, for errors about keys it does not have.
    line: usize,
    /// `[[forward]]` for one of an array of tables, which errors name too:
    /// the key's line alone would not say which rule.
    array: Option<String>,
}

impl<'d, T> Located<'d, T> {
    /// Whether the file sets `key` in this section.
    pub fn has(&self, key: &str) -> bool {
        self.key_span(key).is_some()
    }

    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        let DeValue::Table(table) = self.table?.get_ref() else {
            return None;
        };
        table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(k, _)| k.span())
    }
}

impl<'a> Doc<'a> {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &'a str, origin: &str) -> Result<Doc<'a>, UsageError> {
        let root = DeTable::parse(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            located(origin, line, e.message().trim().replace('\n', " "))
        })?;
        Ok(Doc {
            text,
            origin: origin.to_string(),
            root,
        })
    }

    /// Refuses top-level keys other than `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), UsageError> {
        match self
            .root
            .get_ref()
            .iter()
            .find(|(k, _)| !known.contains(&k.get_ref().as_ref()))
        {
            Some((k, _)) => Err(self.at(
                k.span().start,
                format!(
                    "{}: unknown section (expected one of: {})",
                    k.get_ref(),
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    fn entry(&self, key: &str) -> Option<(&Spanned<DeString<'a>>, &Spanned<DeValue<'a>>)> {
        self.root.get_ref().iter().find(|(k, _)| k.get_ref() == key)
    }

    /// A top-level value, if the file has it.
    pub fn value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, UsageError> {
        let Some((k, v)) = self.entry(key) else {
            return Ok(None);
        };
        T::deserialize(ValueDeserializer::from(v.clone()))
            .map(Some)
            .map_err(|e| self.at(k.span().start, format!("{key}: {}", e.message())))
    }

    /// The table `key`, or `T`'s defaults when the file has none.
    pub fn section<'d, T>(&'d self, key: &str) -> Result<Located<'d, T>, UsageError>
    where
        T: DeserializeOwned + Default + serde::Serialize,
    {
        match self.entry(key) {
            None => Ok(Located {
                value: T::default(),
                table: None,
                line: 1,
                array: None,
            }),
            Some((k, v)) => Ok(Located {
                value: self.read(key, v)?,
                table: Some(v),
                line: line_of(self.text, k.span().start),
                array: None,
            }),
        }
    }

    /// Every table of the array of tables `key` (`[[forward]]`).
    pub fn tables<'d, T>(&'d self, key: &str) -> Result<Vec<Located<'d, T>>, UsageError>
    where
        T: DeserializeOwned + Default + serde::Serialize,
    {
        let Some((k, v)) = self.entry(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.at(k.span().start, format!("{key}: expected [[{key}]] tables")));
        };
        items
            .iter()
            .map(|item| {
                let line = self.header_line(key, item.span().start);
                let value = self.read(key, item).map_err(|e| in_rule(e, key, line))?;
                Ok(Located {
                    value,
                    table: Some(item),
                    line,
                    array: Some(key.to_string()),
                })
            })
            .collect()
    }

    /// An option's error, at the line of its key in `section`.
    pub fn option_error<T>(&self, section: &Located<T>, err: OptionError) -> UsageError {
        let line = section
            .key_span(err.key)
            .map_or(section.line, |s| line_of(self.text, s.start));
        let err = located(&self.origin, line, format!("{}: {}", err.key, err.problem));
        match &section.array {
            Some(key) => in_rule(err, key, section.line),
            None => err,
        }
    }

    /// The line of the `[[key]]` header at or before `offset`: a table's
    /// span starts at its first key, not at its header.
    fn header_line(&self, key: &str, offset: usize) -> usize {
        let header = format!("[[{key}]]");
        // The span may start at the header itself or just after it.
        let before = &self.text[..(offset + header.len()).min(self.text.len())];
        before
            .rfind(&header)
            .map_or_else(|| line_of(self.text, offset), |at| line_of(self.text, at))
    }

    fn read<T>(&self, name: &str, value: &Spanned<DeValue<'a>>) -> Result<T, UsageError>
    where
        T: DeserializeOwned + Default + serde::Serialize,
    {
        // Unknown keys are found here rather than by serde's
        // `deny_unknown_fields`, which takes a key that a nested flattened
        // group consumed for an unknown one.
        if let DeValue::Table(table) = value.get_ref() {
            let keys = keys_of::<T>();
            if let Some((k, _)) = table
                .iter()
                .find(|(k, _)| !keys.iter().any(|n| n == k.get_ref()))
            {
                return Err(self.at(
                    k.span().start,
                    format!(
                        "{}: unknown option (expected one of: {})",
                        k.get_ref(),
                        keys.join(", ")
                    ),
                ));
            }
        }
        let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let DeValue::Table(table) = value.get_ref() else {
            let at = err.span().unwrap_or(value.span()).start;
            return Err(self.at(at, format!("{name}: {}", err.message())));
        };
        // The first key that fails on its own is the one to blame.
        for (k, v) in table.iter() {
            let mut alone = DeTable::new();
            alone.insert(k.clone(), v.clone());
            let single = Spanned::new(value.span(), DeValue::Table(alone));
            if let Err(e) = T::deserialize(ValueDeserializer::from(single)) {
                return Err(self.at(k.span().start, format!("{}: {}", k.get_ref(), e.message())));
            }
        }
        let at = err.span().unwrap_or(value.span()).start;
        Err(self.at(at, format!("{name}: {}", err.message())))
    }

    fn at(&self, offset: usize, message: String) -> UsageError {
        located(&self.origin, line_of(self.text, offset), message)
    }
}

type DeString<'a> = std::borrow::Cow<'a, str>;

/// The keys a section type takes, read off its defaults.
pub fn keys_of<T: Default + serde::Serialize>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `err` marked as being about the `[[key]]` rule at `line`.
fn in_rule(err: UsageError, key: &str, line: usize) -> UsageError {
    match err.0.split_once(": ") {
        Some((place, rest)) => UsageError(format!("{place} ([[{key}]] at line {line}): {rest}")),
        None => err,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn located(origin: &str, line: usize, message: String) -> UsageError {
    let message = crate::error::one_line(&message);
    UsageError(format!("config {origin} line {line}: {message}"))
}

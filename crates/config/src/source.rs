//! Reading a configuration file into its typed form, with errors that fit on
//! one line and name what to fix: a syntax error gives its line and column,
//! an unknown key its full path and the nearest known key, a wrong type the
//! key and the value as written.
//!
//! The file is parsed in two steps. First into an untyped tree (JSON or TOML
//! value), which catches syntax errors and lets the key check walk every
//! table, nested ones included, against a [`Schema`]. Then the tree is
//! deserialised into the typed file, with the path of any type error tracked
//! so that the message can quote the key and the value.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::ConfigError;

/// The two formats a configuration file can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.json`
    Json,
    /// `.toml`
    Toml,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Toml => "TOML",
        }
    }
}

/// The keys a part of the file may hold.
#[derive(Debug)]
pub(crate) enum Schema {
    /// Any value; not checked further here.
    Any,
    /// A table with these keys.
    Table(&'static [Field]),
    /// An array whose items all follow one schema.
    ArrayOf(&'static Schema),
    /// A table whose keys depend on the value of its `tag` key.
    Tagged {
        /// The key that names the variant.
        tag: &'static str,
        /// Each variant's name and keys (besides the tag).
        variants: &'static [(&'static str, &'static [Field])],
    },
}

/// One key of a table.
#[derive(Debug)]
pub(crate) struct Field {
    /// The key.
    pub name: &'static str,
    /// Other spellings that are accepted but never suggested.
    pub aliases: &'static [&'static str],
    /// What its value holds.
    pub schema: Schema,
}

impl Field {
    /// A key whose value is not a table (or is checked elsewhere).
    pub(crate) const fn leaf(name: &'static str) -> Field {
        Field { name, aliases: &[], schema: Schema::Any }
    }
}

/// A parsed file before it is typed: what the key check walks and what error
/// messages quote.
#[derive(Debug)]
enum Node {
    Table(Vec<(String, Node)>),
    Array(Vec<Node>),
    Scalar(String),
}

impl Node {
    fn from_json(value: &serde_json::Value) -> Node {
        match value {
            serde_json::Value::Object(map) => {
                Node::Table(map.iter().map(|(key, value)| (key.clone(), Node::from_json(value))).collect())
            }
            serde_json::Value::Array(items) => Node::Array(items.iter().map(Node::from_json).collect()),
            scalar => Node::Scalar(scalar.to_string()),
        }
    }

    fn from_toml(value: &toml::Value) -> Node {
        match value {
            toml::Value::Table(table) => {
                Node::Table(table.iter().map(|(key, value)| (key.clone(), Node::from_toml(value))).collect())
            }
            toml::Value::Array(items) => Node::Array(items.iter().map(Node::from_toml).collect()),
            scalar => Node::Scalar(scalar.to_string()),
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Table(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value on one line, shortened if long.
    fn display(&self) -> String {
        const MAX_CHARS: usize = 80;
        let mut text = String::new();
        self.write_into(&mut text);
        if text.chars().count() > MAX_CHARS {
            text = text.chars().take(MAX_CHARS - 3).collect::<String>() + "...";
        }
        text
    }

    fn write_into(&self, out: &mut String) {
        match self {
            Node::Scalar(text) => out.push_str(text),
            Node::Array(items) => {
                out.push('[');
                for (idx, item) in items.iter().enumerate() {
                    if idx > 0 {
                        out.push_str(", ");
                    }
                    item.write_into(out);
                }
                out.push(']');
            }
            Node::Table(entries) => {
                out.push('{');
                for (idx, (key, value)) in entries.iter().enumerate() {
                    if idx > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push_str(": ");
                    value.write_into(out);
                }
                out.push('}');
            }
        }
    }
}

/// Parses `text` as `format`, checks its keys against `schema`, and
/// deserialises it as `T`.
pub(crate) fn parse<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    format: Format,
    schema: &Schema,
) -> Result<T, ConfigError> {
    match format {
        Format::Json => {
            let value = json_value(file, text)?;
            let node = Node::from_json(&value);
            check_top(file, &node)?;
            check_keys(file, &node, schema)?;
            json_typed(file, &node, value)
        }
        Format::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|error| {
                let (line, column) = match error.span() {
                    Some(span) => line_column(text, span.start),
                    None => (1, 1),
                };
                let mut message = one_line(error.message());
                // toml does not say which key is duplicated; its span does.
                if message == "duplicate key"
                    && let Some(key) = error.span().and_then(|span| text.get(span))
                {
                    message = format!("duplicate key `{}`", key.trim());
                }
                ConfigError::Syntax { file: file.to_path_buf(), format: format.name(), line, column, message }
            })?;
            let value = toml::Value::Table(table);
            let node = Node::from_toml(&value);
            check_keys(file, &node, schema)?;
            serde_path_to_error::deserialize(value).map_err(|error| {
                let path = error.path().clone();
                type_error(file, &node, &path, error.inner().message())
            })
        }
    }
}

/// Parses `text` as a JSON document that clocklab wrote (a manifest) and
/// deserialises it as `T`, with the errors of [`parse`] (line and column, the
/// key of a value of the wrong type); keys it does not know are left alone,
/// as a later version may add some.
pub(crate) fn parse_json<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let value = json_value(file, text)?;
    let node = Node::from_json(&value);
    check_top(file, &node)?;
    json_typed(file, &node, value)
}

fn json_value(file: &Path, text: &str) -> Result<serde_json::Value, ConfigError> {
    serde_json::from_str(text).map_err(|error| {
        // serde_json's message ends with the position, which the error gives apart.
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let message = error.to_string();
        let message = message.strip_suffix(&suffix).unwrap_or(&message).to_string();
        ConfigError::Syntax {
            file: file.to_path_buf(),
            format: Format::Json.name(),
            line: error.line().max(1),
            column: error.column().max(1),
            message,
        }
    })
}

fn json_typed<T: DeserializeOwned>(file: &Path, node: &Node, value: serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().clone();
        type_error(file, node, &path, &error.into_inner().to_string())
    })
}

/// A configuration is a table of keys; a JSON file may hold anything else.
fn check_top(file: &Path, node: &Node) -> Result<(), ConfigError> {
    match node {
        Node::Table(_) => Ok(()),
        _ => Err(ConfigError::Parse { file: file.to_path_buf(), message: "the file must hold a table of keys".into() }),
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A parser's message, possibly over several lines, as one line.
fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("; ")
}

/// The first key of the file that its table does not take, if any.
fn check_keys(file: &Path, root: &Node, schema: &Schema) -> Result<(), ConfigError> {
    let mut path = String::new();
    match find_unknown_key(root, schema, &mut path) {
        None => Ok(()),
        Some((key, hint)) => Err(ConfigError::UnknownKey { file: file.to_path_buf(), key, hint }),
    }
}

/// Walks `node`; on the first unknown key, its full path and a hint.
/// `path` is the path of `node` (empty at the top).
fn find_unknown_key(node: &Node, schema: &Schema, path: &mut String) -> Option<(String, String)> {
    match (schema, node) {
        (Schema::ArrayOf(item_schema), Node::Array(items)) => {
            for (idx, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{idx}]"));
                let found = find_unknown_key(item, item_schema, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Schema::Table(fields), Node::Table(entries)) => check_table(entries, fields, &[], path),
        (Schema::Tagged { tag, variants }, Node::Table(entries)) => {
            let tag_value = match node.get(tag) {
                Some(Node::Scalar(text)) => Some(text.trim_matches('"')),
                _ => None,
            };
            let tag_field = [Field::leaf(tag)];
            match variants.iter().find(|(name, _)| Some(*name) == tag_value) {
                Some((_, fields)) => check_table(entries, fields, &tag_field, path),
                // Without a known variant, accept any variant's keys; the
                // typed step then names the tag's value.
                None => {
                    let mut all: Vec<&Field> = tag_field.iter().collect();
                    for (_, fields) in variants.iter() {
                        for field in fields.iter() {
                            if !all.iter().any(|f| f.name == field.name) {
                                all.push(field);
                            }
                        }
                    }
                    check_entries(entries, &all, path)
                }
            }
        }
        // A value of the wrong shape is the typed step's to report.
        _ => None,
    }
}

fn check_table(
    entries: &[(String, Node)],
    fields: &'static [Field],
    extra: &[Field],
    path: &mut String,
) -> Option<(String, String)> {
    let all: Vec<&Field> = extra.iter().chain(fields.iter()).collect();
    check_entries(entries, &all, path)
}

fn check_entries(entries: &[(String, Node)], fields: &[&Field], path: &mut String) -> Option<(String, String)> {
    for (key, value) in entries {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let field = fields.iter().find(|f| f.name == key || f.aliases.contains(&key.as_str()));
        let found = match field {
            None => Some((path.clone(), hint(key, fields))),
            Some(field) => find_unknown_key(value, &field.schema, path),
        };
        path.truncate(len);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// ` (did you mean `x`?)` when a known key is close, else the known keys.
fn hint(key: &str, fields: &[&Field]) -> String {
    // Close enough to be a typo: clap uses the same measure with a similar bar.
    const MIN_SIMILARITY: f64 = 0.8;
    let lower = key.to_ascii_lowercase();
    let best = fields
        .iter()
        .map(|field| (strsim::jaro_winkler(&lower, field.name), field.name))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((similarity, name)) if similarity >= MIN_SIMILARITY => format!(" (did you mean `{name}`?)"),
        _ => {
            let names: Vec<String> = fields.iter().map(|field| format!("`{}`", field.name)).collect();
            format!(" (expected one of {})", names.join(", "))
        }
    }
}

/// A type error from the typed step, with the key and value it is about.
fn type_error(file: &Path, root: &Node, path: &serde_path_to_error::Path, message: &str) -> ConfigError {
    let mut key = String::new();
    let mut node = Some(root);
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                key.push_str(&format!("[{index}]"));
                node = match node {
                    Some(Node::Array(items)) => items.get(*index),
                    _ => None,
                };
            }
            serde_path_to_error::Segment::Map { key: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(name);
                node = node.and_then(|n| n.get(name));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    let message = one_line(message);
    match (key.is_empty(), node) {
        (true, _) => ConfigError::Parse { file: file.to_path_buf(), message },
        (false, Some(node)) => {
            ConfigError::Type { file: file.to_path_buf(), key, value: node.display(), message: friendly(&message) }
        }
        (false, None) => ConfigError::Parse { file: file.to_path_buf(), message: format!("key `{key}`: {message}") },
    }
}

/// serde's `invalid type: string "six", expected u32` without the value the
/// message already quotes, and with the expected type in words.
fn friendly(message: &str) -> String {
    let rewrite = |kind: &str, rest: &str| {
        let expected = rest.rsplit_once(", expected ").map_or(rest, |(_, expected)| expected);
        let expected = match expected {
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => format!("a whole number ({expected})"),
            "f32" | "f64" => "a number".to_string(),
            "a sequence" => "an array".to_string(),
            "a map" => "a table".to_string(),
            other => other.to_string(),
        };
        format!("{kind}: expected {expected}")
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        rewrite("wrong type", rest)
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        rewrite("out of range", rest)
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = [2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // The byte after `é` is the 3rd character of line 2, whatever the bytes.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 8), (2, 2), "inside a character rounds down");
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn serde_messages_read_as_words() {
        assert_eq!(friendly("invalid type: string \"six\", expected u32"), "wrong type: expected a whole number (u32)");
        assert_eq!(
            friendly("invalid value: integer `70000`, expected u16"),
            "out of range: expected a whole number (u16)"
        );
        assert_eq!(friendly("invalid type: integer `5`, expected a sequence"), "wrong type: expected an array");
        assert_eq!(friendly("missing field `kind`"), "missing field `kind`");
    }
}

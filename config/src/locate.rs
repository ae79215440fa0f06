//! Where each key of a TOML document is: key paths to byte spans, and byte offsets to
//! line/column. Used to point every problem at its line.

use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, TableLike, Value};

/// One key-value pair of the document.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// e.g. `origins[1].path`.
    pub path: String,
    /// From the start of the key to the end of the value.
    pub span: Range<usize>,
}

/// Every key-value pair in the document (tables and arrays of tables included), in order.
pub(crate) fn entries(doc: &ImDocument<&str>) -> Vec<Entry> {
    let mut out = Vec::new();
    walk_table(doc.as_table(), "", &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_table(table: &Table, prefix: &str, out: &mut Vec<Entry>) {
    walk_table_like(table, prefix, out);
}

fn walk_table_like(table: &dyn TableLike, prefix: &str, out: &mut Vec<Entry>) {
    for (name, item) in table.iter() {
        let path = join(prefix, name);
        let key_start = table
            .get_key_value(name)
            .and_then(|(k, _)| k.span())
            .map(|s| s.start);
        let item_span = item.span();
        if let (Some(start), Some(vs)) = (key_start, item_span.clone()) {
            // Dotted keys and table headers can put the key after the value's start.
            let start = start.min(vs.start);
            out.push(Entry {
                path: path.clone(),
                span: start..vs.end.max(start),
            });
        }
        walk_item(item, &path, out);
    }
}

fn walk_item(item: &Item, path: &str, out: &mut Vec<Entry>) {
    match item {
        Item::Table(t) => walk_table(t, path, out),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(s) = t.span() {
                    out.push(Entry {
                        path: p.clone(),
                        span: s,
                    });
                }
                walk_table(t, &p, out);
            }
        }
        Item::Value(v) => walk_value(v, path, out),
        Item::None => {}
    }
}

fn walk_value(v: &Value, path: &str, out: &mut Vec<Entry>) {
    match v {
        Value::InlineTable(t) => walk_table_like(t, path, out),
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(s) = v.span() {
                    out.push(Entry {
                        path: p.clone(),
                        span: s,
                    });
                }
                walk_value(v, &p, out);
            }
        }
        _ => {}
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

//! The subset of the sqllogictest format `tests/slt/*.slt` use: parsing records, and printing
//! result cells as the files expect them.

use serde_json::Value;

/// One cell as sqllogictest prints it.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) if s.is_empty() => "(empty)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A record of an .slt file.
pub enum Record {
    Query {
        sql: String,
        sort: bool,
        expected: Vec<String>,
        line: usize,
    },
    Error {
        sql: String,
        pattern: String,
        line: usize,
    },
}

/// Parses the subset of the sqllogictest format the files use: `query <types> [rowsort]`
/// blocks with `----` results, and `query error <text>` / `statement error <text>`.
pub fn parse_slt(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let head: Vec<&str> = line.split_whitespace().collect();
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i]);
            i += 1;
        }
        let sql = sql.join("\n");
        match head.as_slice() {
            ["query" | "statement", "error", rest @ ..] => out.push(Record::Error {
                sql,
                pattern: rest.join(" "),
                line: start,
            }),
            ["query", _types, rest @ ..] => {
                let mut expected = Vec::new();
                if i < lines.len() && lines[i].trim() == "----" {
                    i += 1;
                    while i < lines.len() && !lines[i].trim().is_empty() {
                        expected.push(lines[i].trim_end().to_string());
                        i += 1;
                    }
                }
                out.push(Record::Query {
                    sql,
                    sort: rest.contains(&"rowsort"),
                    expected,
                    line: start,
                });
            }
            other => panic!("line {start}: unknown record {other:?}"),
        }
    }
    out
}

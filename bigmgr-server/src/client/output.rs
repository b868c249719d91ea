//! What the client prints: aligned tables for lists, `key: value` lines for one resource, the
//! server's JSON with `--json`, and the small formatters they use (times, ages, sizes).

use serde_json::Value;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    /// Print JSON for scripts instead of tables.
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }

    /// Prints a list: with `--json` the items as one JSON array, else a table of `columns`
    /// with a row per item.
    pub fn list(&self, items: Vec<Value>, columns: &[Column]) {
        if self.json {
            self.print_json(&Value::Array(items));
        } else {
            Table::of(&items, columns).print();
        }
    }

    /// Prints one answer of the server: with `--json` as it is, else what `human` prints of it.
    pub fn one(&self, value: &Value, human: impl FnOnce(&Value)) {
        if self.json {
            self.print_json(value);
        } else {
            human(value);
        }
    }

    /// Says what a command did, for a person (with `--json` nothing: the answer had no body).
    pub fn done(&self, what: impl std::fmt::Display) {
        if !self.json {
            println!("{what}");
        }
    }
}

/// A column of a table: its header, the key of the value it shows of each item, and how it
/// shows it ([`text`] for most; [`age`], [`time`], [`bytes`], [`target`] …). An empty key
/// shows the whole item.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header.
    pub header: &'static str,
    /// The item's key, or `""` for the item itself.
    pub key: &'static str,
    /// The cell of the value.
    pub show: fn(Option<&Value>) -> String,
}

/// A column of the value at `key` as [`text`].
pub const fn col(header: &'static str, key: &'static str) -> Column {
    shown(header, key, text)
}

/// A column of the value at `key` as `show` makes it.
pub const fn shown(
    header: &'static str,
    key: &'static str,
    show: fn(Option<&Value>) -> String,
) -> Column {
    Column { header, key, show }
}

impl Column {
    /// The cell of `item`.
    pub fn cell(&self, item: &Value) -> String {
        match self.key {
            "" => (self.show)(Some(item)),
            key => (self.show)(item.get(key)),
        }
    }
}

/// A table: a header row and rows of cells, printed with the columns aligned by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A table of `columns` with a row per item.
    pub fn of(items: &[Value], columns: &[Column]) -> Table {
        let header: Vec<&str> = columns.iter().map(|c| c.header).collect();
        let mut t = Table::new(&header);
        for item in items {
            t.row(columns.iter().map(|c| c.cell(item)).collect());
        }
        t
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// True if no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending in a newline; the last column is not
    /// padded.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `key: value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{:<width$} {v}", format!("{k}:"));
    }
    out
}

/// Prints `key: value` lines with the values aligned ([`fields`]).
pub fn print_fields(pairs: &[(&str, String)]) {
    print!("{}", fields(pairs));
}

/// A JSON value as a table cell: strings without quotes, `null` or absent as `-`.
pub fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The items of a JSON array; none if `v` is not one.
pub fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// `v[key]` as a table cell.
pub fn field(v: &Value, key: &str) -> String {
    text(v.get(key))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A span of milliseconds, short: `850ms`, `4.2s`, `3m12s`, `5h03m`, `2d04h`.
pub fn span(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        _ if ms < 1000 => format!("{ms}ms"),
        _ if s < 60 => format!("{:.1}s", ms as f64 / 1000.0),
        _ if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago a time (ms since the epoch) was, for an AGE column; `-` for none.
pub fn age(ms: Option<&Value>) -> String {
    match ms.and_then(Value::as_i64) {
        Some(at) => span(now_ms() - at),
        None => "-".to_string(),
    }
}

/// A time (ms since the epoch) as `2026-11-22 10:00:03 UTC (3m12s ago)`; `-` for none.
pub fn time(ms: Option<&Value>) -> String {
    let Some(ms) = ms.and_then(Value::as_i64) else {
        return "-".to_string();
    };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC ({} ago)",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        span(now_ms() - ms)
    )
}

/// The date of a day number since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A size in bytes, binary units: `512 B`, `1.5 GiB`.
pub fn bytes(v: Option<&Value>) -> String {
    let Some(n) = v.and_then(Value::as_u64) else {
        return "-".to_string();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = n as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[i])
    }
}

/// A job's target as words: `cluster`, `service hello`, `component hello/hello_server`,
/// `hosts h1,h2`, `units 3,4`.
pub fn target(v: Option<&Value>) -> String {
    let join = |items: &Value| {
        items
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| text(Some(i)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(map)) => match map.iter().next() {
            Some((k, Value::String(s))) => format!("{k} {s}"),
            Some((k, Value::Array(_))) => format!("{k} {}", join(&map[k])),
            Some((k, Value::Object(c))) if k == "component" => format!(
                "component {}/{}",
                text(c.get("service")),
                text(c.get("component"))
            ),
            _ => Value::Object(map.clone()).to_string(),
        },
        other => text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(&["NAME", "STATE", "UNITS"]);
        t.row(vec!["h1".into(), "ONLINE".into(), "2".into()]);
        t.row(vec!["host-two".into(), "LOST".into(), "".into()]);
        assert_eq!(
            t.render(),
            "NAME      STATE   UNITS\nh1        ONLINE  2\nhost-two  LOST\n"
        );
    }

    #[test]
    fn fields_align() {
        let s = fields(&[("id", "1".into()), ("cluster", "c".into())]);
        assert_eq!(s, "id:      1\ncluster: c\n");
    }

    #[test]
    fn formatters() {
        assert_eq!(text(Some(&json!("a"))), "a");
        assert_eq!(text(Some(&json!(null))), "-");
        assert_eq!(text(Some(&json!(3))), "3");
        assert_eq!(span(850), "850ms");
        assert_eq!(span(4_200), "4.2s");
        assert_eq!(span(192_000), "3m12s");
        assert_eq!(span(3 * 86_400_000 + 3_600_000), "3d01h");
        assert_eq!(bytes(Some(&json!(512))), "512 B");
        assert_eq!(bytes(Some(&json!(1536u64 * 1024 * 1024))), "1.5 GiB");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert!(time(Some(&json!(0))).starts_with("1970-01-01 00:00:00 UTC"));
        assert_eq!(target(Some(&json!("cluster"))), "cluster");
        assert_eq!(target(Some(&json!({"service": "zk"}))), "service zk");
        assert_eq!(
            target(Some(
                &json!({"component": {"service": "zk", "component": "zk_server"}})
            )),
            "component zk/zk_server"
        );
        assert_eq!(target(Some(&json!({"hosts": ["h1", "h2"]}))), "hosts h1,h2");
        assert_eq!(target(Some(&json!({"units": [3, 4]}))), "units 3,4");
    }
}

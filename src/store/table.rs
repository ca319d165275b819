//! A recorded result as a terminal table in the style of psql: what a
//! replay shows of the rows the client read. Values are printed as
//! recorded (masked values as masked); control characters are escaped so
//! that a recorded value can never drive the reader's terminal.

use std::fmt::Write as _;

use super::ResultRows;

/// Renders `result` (and a row count line for `rows` returned in all).
pub fn render(result: &ResultRows, rows: u64) -> String {
    let cell = |v: &Option<String>| v.as_deref().map(printable).unwrap_or_default();
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let columns = result
        .columns
        .len()
        .max(cells.iter().map(Vec::len).max().unwrap_or(0));
    let names: Vec<String> = (0..columns)
        .map(|i| {
            result
                .columns
                .get(i)
                .map(|n| printable(n))
                .unwrap_or_default()
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .filter_map(|r| r.get(i))
            .chain(std::iter::once(&names[i]))
            .map(|s| s.lines().map(|l| l.chars().count()).max().unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    let line = |out: &mut String, values: &[String], center: bool| {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let v = values
                    .get(i)
                    .map(|s| s.replace('\n', "\\n"))
                    .unwrap_or_default();
                if center {
                    format!(" {v:^w$} ")
                } else {
                    format!(" {v:<w$} ")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("|").trim_end());
    };
    line(&mut out, &names, true);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    let _ = writeln!(out, "{}", rule.join("+"));
    for r in &cells {
        line(&mut out, r, false);
    }
    if result.truncated || (result.rows.len() as u64) < rows {
        let _ = writeln!(
            out,
            "... ({} more not recorded)",
            rows.saturating_sub(result.rows.len() as u64)
        );
    }
    let _ = writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" });
    out
}

/// A recorded text as a terminal may print it: control characters
/// (escape sequences a client may have put in a statement) shown as
/// `\u{..}`, line breaks kept.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_renders_like_psql() {
        let r = ResultRows {
            columns: vec!["id".into(), "email".into()],
            rows: vec![
                vec![Some("1".into()), Some("a***@example.com".into())],
                vec![Some("22".into()), None],
            ],
            truncated: false,
        };
        assert_eq!(
            render(&r, 2),
            " id |      email\n----+------------------\n 1  | a***@example.com\n 22 |\n(2 rows)\n"
        );
        let cut = ResultRows {
            truncated: true,
            ..r
        };
        assert!(render(&cut, 5).contains("... (3 more not recorded)\n(5 rows)"));
    }

    #[test]
    fn recorded_values_cannot_drive_the_terminal() {
        let r = ResultRows {
            columns: vec!["x".into()],
            rows: vec![vec![Some("\u{1b}[2Jboom".into())]],
            truncated: false,
        };
        assert!(!render(&r, 1).contains('\u{1b}'));
    }
}

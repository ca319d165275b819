//! The classifier corpus: `fixtures/policy/classify.tsv` pins the tags of
//! plain, tricky and adversarial statements and of real drivers' and
//! tools' start-up queries, in both dialects.

#[cfg(test)]
mod tests {
    use crate::policy::classify::{classify_text, Reading};
    use crate::policy::parse::SqlDialect;
    use crate::policy::tags::{Tag, TagSet};

    const CORPUS: &str = include_str!("../../fixtures/policy/classify.tsv");

    /// One line of the corpus: dialects, expected tags, statement text.
    fn lines() -> Vec<(usize, Vec<SqlDialect>, TagSet, &'static str)> {
        CORPUS
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|(i, l)| {
                let mut parts = l.splitn(3, '\t');
                let (d, t, sql) = (
                    parts.next().unwrap(),
                    parts
                        .next()
                        .unwrap_or_else(|| panic!("line {}: no tags", i + 1)),
                    parts
                        .next()
                        .unwrap_or_else(|| panic!("line {}: no statement", i + 1)),
                );
                let dialects = match d {
                    "pg" => vec![SqlDialect::Postgres],
                    "my" => vec![SqlDialect::Mysql],
                    "any" => vec![SqlDialect::Postgres, SqlDialect::Mysql],
                    other => panic!("line {}: dialect {other}", i + 1),
                };
                let tags = t
                    .split_whitespace()
                    .map(|n| Tag::from_name(n).unwrap_or_else(|| panic!("line {}: tag {n}", i + 1)))
                    .collect();
                (i + 1, dialects, tags, sql)
            })
            .collect()
    }

    fn tags_of(dialect: SqlDialect, sql: &str) -> (TagSet, bool) {
        let mut tags = TagSet::EMPTY;
        let mut readable = true;
        for s in classify_text(dialect, sql.as_bytes()) {
            tags.extend(s.risk.tags);
            if let Some(crate::policy::risk::Prepared::Execute(_)) = &s.risk.prepared {
                // Judged alone, an EXECUTE runs something never prepared
                // unless the same line prepares it.
                if !sql.to_ascii_lowercase().contains("prepare") {
                    tags.insert(Tag::Unknown);
                }
            }
            readable &= !matches!(s.reading, Reading::Unreadable(_));
        }
        (tags, readable)
    }

    #[test]
    fn every_corpus_statement_gets_its_tags() {
        let lines = lines();
        let (mut pg, mut my) = (0, 0);
        let mut failures = Vec::new();
        for (line, dialects, expected, sql) in &lines {
            for &d in dialects {
                match d {
                    SqlDialect::Postgres => pg += 1,
                    SqlDialect::Mysql => my += 1,
                }
                let (got, _) = tags_of(d, sql);
                if got != *expected {
                    failures.push(format!(
                        "line {line} ({d:?}): expected [{expected}], got [{got}]: {sql}"
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} corpus checks differ:\n{}",
            failures.len(),
            pg + my,
            failures.join("\n")
        );
        assert!(
            lines.len() >= 400,
            "the corpus holds {} statements",
            lines.len()
        );
        assert!(pg >= 150 && my >= 150, "pg {pg}, mysql {my}");
    }
}

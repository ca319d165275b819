//! Parsing statement texts with sqlparser. A text the parser cannot read
//! is reported as such, never guessed at: what the parser cannot see is
//! not a read.

use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};

/// The SQL dialect of a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
}

impl SqlDialect {
    pub(crate) fn dialect(self) -> &'static dyn Dialect {
        match self {
            SqlDialect::Postgres => &PostgreSqlDialect {},
            SqlDialect::Mysql => &MySqlDialect {},
        }
    }
}

/// Why a statement text could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// The bytes are not UTF-8 (a client encoding the gateway cannot read).
    #[error("statement text is not valid UTF-8")]
    NotUtf8,
    /// sqlparser could not read it.
    #[error(transparent)]
    Parser(#[from] ParserError),
}

/// Parses a statement text into its statements (a simple query may hold
/// several, separated by semicolons).
pub fn parse(dialect: SqlDialect, sql: &[u8]) -> Result<Vec<Statement>, ParseError> {
    let sql = std::str::from_utf8(sql).map_err(|_| ParseError::NotUtf8)?;
    Ok(Parser::parse_sql(dialect.dialect(), sql)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_statement_strings_split() {
        let stmts = parse(
            SqlDialect::Postgres,
            b"select 1; update t set a = 1 where id = $1;",
        )
        .unwrap();
        assert_eq!(stmts.len(), 2);
    }

    #[test]
    fn unparseable_and_not_utf8_are_errors() {
        assert!(matches!(
            parse(SqlDialect::Postgres, b"selec 1"),
            Err(ParseError::Parser(_))
        ));
        assert_eq!(
            parse(SqlDialect::Postgres, b"select '\xff'"),
            Err(ParseError::NotUtf8)
        );
    }
}

#[cfg(test)]
mod corpus {
    use super::*;

    /// Every statement of the corpus the benches use must parse: a
    /// statement that stops parsing is a regression in what the policy
    /// will be able to judge.
    #[test]
    fn the_postgres_corpus_parses() {
        let text = include_str!("../../fixtures/sql/pg_statements.sql");
        let failures: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
            .filter_map(|l| {
                parse(SqlDialect::Postgres, l.as_bytes())
                    .err()
                    .map(|e| format!("{l}\n  -> {e}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

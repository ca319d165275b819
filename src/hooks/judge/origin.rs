//! Where a judged text came from, named as records name it. Why: each
//! text's origin was formatted and lowercased for its record (two
//! allocations per statement judged); the names are constants.
//!
//! This module must never name an origin other than as records always
//! have: the lowercase of its `Debug` name (a test holds them to it).

/// Where a judged text came from: `Debug` names it in the log, and
/// [`TextOrigin::record_name`] in records (`query`, `parse`, ...).
pub trait TextOrigin: std::fmt::Debug {
    /// Its name in records: the lowercase of its `Debug` name.
    fn record_name(&self) -> &'static str;
}

impl TextOrigin for sqlgate_postgres::hooks::StatementOrigin {
    fn record_name(&self) -> &'static str {
        use sqlgate_postgres::hooks::StatementOrigin as O;
        match self {
            O::Query => "query",
            O::Parse => "parse",
            O::Startup => "startup",
            O::FunctionCall => "functioncall",
        }
    }
}

impl TextOrigin for sqlgate_mysql::hooks::StatementOrigin {
    fn record_name(&self) -> &'static str {
        use sqlgate_mysql::hooks::StatementOrigin as O;
        match self {
            O::Query => "query",
            O::Prepare => "prepare",
            O::InitDb => "initdb",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TextOrigin;

    fn named_as_before(o: impl TextOrigin) {
        assert_eq!(o.record_name(), format!("{o:?}").to_lowercase());
    }

    #[test]
    fn each_origin_keeps_the_name_records_gave_it() {
        use sqlgate_mysql::hooks::StatementOrigin as M;
        use sqlgate_postgres::hooks::StatementOrigin as P;
        for o in [P::Query, P::Parse, P::Startup, P::FunctionCall] {
            named_as_before(o);
        }
        for o in [M::Query, M::Prepare, M::InitDb] {
            named_as_before(o);
        }
    }
}

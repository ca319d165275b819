//! The session settings the classifier knows by name: which are harmless
//! (`session`), and at which values, since some change how the server
//! reads statement text (string escapes, encodings, quotes) or which
//! functions unqualified names call. Anything not named here, and any
//! value that is not a plain literal where the value matters, is
//! `admin.config`.
//!
//! This module must never call a setting harmless that changes how the
//! server reads what the gateway has judged.

use super::super::tags::{Tag, TagSet};

/// Settings drivers and tools set that change nothing a policy protects.
const HARMLESS_SETTINGS: &[&str] = &[
    "application_name",
    "search_path",
    "client_encoding",
    "datestyle",
    "timezone",
    "time_zone",
    "extra_float_digits",
    "intervalstyle",
    "client_min_messages",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "standard_conforming_strings",
    "bytea_output",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "default_transaction_isolation",
    "transaction_isolation",
    "tx_isolation",
    "names",
    "character_set_client",
    "character_set_results",
    "character_set_connection",
    "collation_connection",
    "sql_mode",
    "autocommit",
    "sql_select_limit",
    "net_write_timeout",
    "net_read_timeout",
    "wait_timeout",
    "interactive_timeout",
    "group_concat_max_len",
    "max_execution_time",
    "max_statement_time",
    "sql_auto_is_null",
    "sql_quote_show_create",
    "sql_big_selects",
    "sql_notes",
    "sql_warnings",
    "div_precision_increment",
    "lc_time_names",
    "session_track_schema",
    "session_track_state_change",
    "session_track_system_variables",
    "session_track_transaction_info",
    "lock_wait_timeout",
    "innodb_lock_wait_timeout",
    "jit",
    "work_mem",
    "temp_buffers",
    "random_page_cost",
    "seq_page_cost",
    "cpu_tuple_cost",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "effective_cache_size",
    "from_collapse_limit",
    "join_collapse_limit",
    "plan_cache_mode",
    "geqo",
    "default_statistics_target",
    "xmloption",
    "check_function_bodies",
    "idle_in_transaction_session_timeout",
    "optimizer_switch",
    "max_join_size",
    "default_week_format",
    "time_format",
    "date_format",
    "datetime_format",
    "character_set_database",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_keepalives_count",
    "gin_fuzzy_search_limit",
    "enable_seqscan",
    "statement_timeout",
    "client_connection_check_interval",
    "transaction_isolation",
    "ssl_renegotiation_limit",
    "max_parallel_workers_per_gather",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "sql_safe_updates",
    "big_tables",
    "max_heap_table_size",
    "tmp_table_size",
    "sort_buffer_size",
    "join_buffer_size",
    "long_query_time",
    "default_with_oids",
    "escape_string_warning",
    "array_nulls",
    "quote_all_identifiers",
    // pg_dump's: they only restrict the session. `row_security = off`
    // makes a query that a policy would filter fail instead (it bypasses
    // nothing); `restrict_nonsystem_relation_kind` forbids kinds of
    // relations.
    "synchronize_seqscans",
    "row_security",
    "restrict_nonsystem_relation_kind",
];

/// Tags of setting a session parameter (SET, RESET, `set_config`):
/// harmless ones are `session`, everything else `admin.config` (among
/// them the settings that would lift the gateway's read-only session:
/// `default_transaction_read_only`, `transaction_read_only`).
pub fn setting_tags(name: &str) -> TagSet {
    setting_value_tags(name, None)
}

/// Client encodings in which a multibyte character may end in a byte that
/// is `\` or a quote in ASCII: the server would end a string where the
/// gateway (reading UTF-8) does not, so switching to them is not harmless.
const UNSAFE_ENCODINGS: &[&str] = &[
    "sjis",
    "shift_jis",
    "shiftjis",
    "cp932",
    "windows-31j",
    "sjis_ms",
    "mskanji",
    "big5",
    "cp950",
    "gbk",
    "cp936",
    "gb18030",
    "uhc",
    "cp949",
    "johab",
    "win936",
    "win950",
    "win949",
];

/// Client encodings the gateway reads statements in safely: ASCII-
/// compatible ones in which no byte of a multibyte character looks like
/// an ASCII `\` or quote. Every other name (aliases, numeric ids, names
/// unknown here) is treated as unsafe.
const SAFE_ENCODINGS: &[&str] = &[
    "utf8",
    "utf8mb4",
    "utf8mb3",
    "unicode",
    "sqlascii",
    "ascii",
    "binary",
    "default",
    "latin1",
    "latin2",
    "latin3",
    "latin4",
    "latin5",
    "latin6",
    "latin7",
    "latin8",
    "latin9",
    "latin10",
    "iso88591",
    "iso88592",
    "iso88593",
    "iso88594",
    "iso88595",
    "iso88596",
    "iso88597",
    "iso88598",
    "iso88599",
    "iso885910",
    "iso885913",
    "iso885914",
    "iso885915",
    "iso885916",
    "win1250",
    "win1251",
    "win1252",
    "win1253",
    "win1254",
    "win1255",
    "win1256",
    "win1257",
    "win1258",
    "windows1250",
    "windows1251",
    "windows1252",
    "windows1253",
    "windows1254",
    "windows1255",
    "windows1256",
    "windows1257",
    "windows1258",
    "cp1250",
    "cp1251",
    "cp1252",
    "cp1256",
    "cp1257",
    "win866",
    "win874",
    "cp866",
    "koi8r",
    "koi8u",
    "eucjp",
    "euckr",
    "euccn",
    "euctw",
    "eucjis2004",
    "ujis",
    "greek",
    "hebrew",
    "armscii8",
    "geostd8",
    "keybcs2",
    "macce",
    "macroman",
    "dec8",
    "hp8",
    "swe7",
    "tis620",
    "cp850",
    "cp852",
    "latin1bin",
];

/// `concat(concat(@@sql_mode,'a'),'b')` (spaces removed, lower case):
/// literal modes appended to the current `sql_mode`.
fn appends_to_sql_mode(v: &str) -> bool {
    let depth = v.matches("concat(").count();
    let Some(mut rest) = v.strip_prefix(&"concat(".repeat(depth)).and_then(|r| {
        r.strip_prefix("@@session.sql_mode")
            .or_else(|| r.strip_prefix("@@sql_mode"))
    }) else {
        return false;
    };
    for _ in 0..depth {
        let Some(r) = rest.strip_prefix(",'") else {
            return false;
        };
        let Some(end) = r.find("')") else {
            return false;
        };
        if r[..end].contains(['\'', '\\']) {
            return false;
        }
        rest = &r[end + 2..];
    }
    depth > 0 && rest.is_empty()
}

/// Tags of setting `name` to `value` (its SQL text, when known): some
/// harmless settings are harmless only at some values, because they change
/// how the server reads statement text (string escapes, encodings, quotes)
/// or which functions unqualified names call.
pub fn setting_value_tags(name: &str, value: Option<&str>) -> TagSet {
    let lower = name
        .trim()
        .trim_matches(|c| c == '"' || c == '`')
        .to_ascii_lowercase();
    let lower = lower
        .strip_prefix("@@")
        .map(|n| {
            n.strip_prefix("session.")
                .or_else(|| n.strip_prefix("local."))
                .unwrap_or(n)
        })
        .unwrap_or(&lower);
    let lower = lower.trim_matches(|c| c == '"' || c == '`');
    if lower.starts_with("global.") || lower.starts_with("persist") {
        return TagSet::of(Tag::AdminConfig);
    }
    // A quoted literal (or a bare word); anything else — a variable, a
    // number, an expression — may evaluate to anything.
    let literal = value.is_some_and(|v| {
        let v = v.trim();
        let lower = v.to_ascii_lowercase().replace(' ', "");
        v.starts_with('\'') || v.starts_with('"')
            || (v.starts_with(|c: char| c.is_ascii_alphabetic())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            // Django and Connector/J append a mode to the current one
            // (which the gateway has already judged): the appended
            // literal is what is judged.
            || appends_to_sql_mode(&lower)
    });
    let value = value.map(|v| {
        v.trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .to_ascii_lowercase()
    });
    let v = value.as_deref();
    let lexing_unsafe = match lower {
        "standard_conforming_strings" => {
            v.is_some_and(|v| !matches!(v, "on" | "true" | "1" | "default"))
        }
        "client_encoding" | "names" | "character_set_client" | "character_set_connection" => v
            .is_some_and(|v| {
                // `SET NAMES 'x' COLLATE y`: the encoding is the first word.
                let name = v.split_whitespace().next().unwrap_or("");
                let name = name.trim_matches(|c| c == '\'' || c == '"');
                let plain: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                UNSAFE_ENCODINGS
                    .iter()
                    .any(|e| plain == e.replace(['-', '_'], ""))
                    || !literal
                    || !SAFE_ENCODINGS.contains(&plain.as_str())
            }),
        "sql_mode" => v.is_some_and(|v| {
            let v = v.to_ascii_uppercase();
            !literal
                || ["NO_BACKSLASH_ESCAPES", "ANSI", "ORACLE"]
                    .iter()
                    .any(|m| v.contains(m))
        }),
        // pg_catalog after another schema lets that schema shadow the
        // built-in functions the classifier trusts.
        "search_path" => v.is_some_and(|v| {
            v.contains("pg_catalog")
                && !v
                    .trim_start_matches(['\'', '"', ' '])
                    .starts_with("pg_catalog")
        }),
        _ => false,
    };
    if lexing_unsafe {
        return TagSet::of(Tag::AdminConfig);
    }
    if lower.starts_with("enable_") || lower.starts_with("geqo") {
        return TagSet::of(Tag::Session);
    }
    match lower {
        "role" | "session_authorization" => TagSet::of(Tag::DclRole),
        n if HARMLESS_SETTINGS.contains(&n) => TagSet::of(Tag::Session),
        _ => TagSet::of(Tag::AdminConfig),
    }
}

use super::*;

#[test]
fn only_unqualified_or_catalog_builtins_are_known() {
    let pg = SqlDialect::Postgres;
    assert!(function_tags(pg, None, "LOWER").is_empty());
    assert!(function_tags(pg, Some("pg_catalog"), "format_type").is_empty());
    assert!(function_tags(pg, Some("pg_catalog"), "pg_relation_is_publishable").is_empty());
    assert_eq!(
        function_tags(SqlDialect::Mysql, None, "pg_relation_is_publishable"),
        TagSet::of(Tag::CodeFunction)
    );
    assert_eq!(
        function_tags(pg, Some("evil"), "lower"),
        TagSet::of(Tag::CodeFunction)
    );
    assert_eq!(
        function_tags(pg, None, "query_to_xml"),
        TagSet::of(Tag::CodeFunction)
    );
    assert_eq!(
        function_tags(pg, None, "pg_read_file"),
        TagSet::of(Tag::FileRead)
    );
}

#[test]
fn settings_that_change_how_text_is_read_are_admin() {
    for (name, value, expected) in [
        ("standard_conforming_strings", "on", Tag::Session),
        ("standard_conforming_strings", "off", Tag::AdminConfig),
        ("client_encoding", "'UTF8'", Tag::Session),
        ("client_encoding", "'SJIS'", Tag::AdminConfig),
        ("client_encoding", "'WIN932'", Tag::AdminConfig),
        ("client_encoding", "'Windows932'", Tag::AdminConfig),
        ("client_encoding", "'SHIFT_JIS_2004'", Tag::AdminConfig),
        ("client_encoding", "'S.JIS'", Tag::AdminConfig),
        ("client_encoding", "'LATIN1'", Tag::Session),
        ("client_encoding", "DEFAULT", Tag::Session),
        ("character_set_client", "13", Tag::AdminConfig),
        ("character_set_client", "utf8mb4", Tag::Session),
        ("sql_mode", "@m", Tag::AdminConfig),
        ("sql_mode", "4", Tag::AdminConfig),
        ("sql_mode", "'STRICT_TRANS_TABLES'", Tag::Session),
        (
            "sql_mode",
            "CONCAT(CONCAT(@@sql_mode, ',A'), ',B')",
            Tag::Session,
        ),
        (
            "sql_mode",
            "CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            Tag::AdminConfig,
        ),
        ("sql_mode", "CONCAT(@@sql_mode, @m)", Tag::AdminConfig),
        ("names", "gbk", Tag::AdminConfig),
        ("sql_mode", "'NO_BACKSLASH_ESCAPES'", Tag::AdminConfig),
        ("sql_mode", "'STRICT_TRANS_TABLES'", Tag::Session),
        (
            "sql_mode",
            "CONCAT(CONCAT(@@sql_mode, ',A'), ',B')",
            Tag::Session,
        ),
        (
            "sql_mode",
            "CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            Tag::AdminConfig,
        ),
        ("sql_mode", "CONCAT(@@sql_mode, @m)", Tag::AdminConfig),
        ("search_path", "myschema, pg_catalog", Tag::AdminConfig),
        ("search_path", "pg_catalog, public", Tag::Session),
        ("\"search_path\"", "public", Tag::Session),
    ] {
        assert_eq!(
            setting_value_tags(name, Some(value)),
            TagSet::of(expected),
            "{name} = {value}"
        );
    }
}

#[test]
fn settings_that_lift_read_only_are_admin() {
    assert_eq!(setting_tags("application_name"), TagSet::of(Tag::Session));
    assert_eq!(setting_tags("@@SESSION.sql_mode"), TagSet::of(Tag::Session));
    for name in [
        "default_transaction_read_only",
        "transaction_read_only",
        "session_replication_role",
        "@@global.sql_mode",
        "sql_log_bin",
    ] {
        assert_eq!(setting_tags(name), TagSet::of(Tag::AdminConfig), "{name}");
    }
}

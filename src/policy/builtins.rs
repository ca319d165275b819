//! What the classifier knows about functions and settings by name: the
//! built-in functions that only read (drivers and tools call them at
//! connect, so they must not make a statement more than a read), the
//! functions with a risk of their own, and the session settings that are
//! harmless. Anything not named here is treated as dangerous: an unknown
//! function is `code.function`, an unknown setting `admin.config`.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::parse::SqlDialect;
use super::tags::{Tag, TagSet};

/// Built-in functions (both dialects) that compute a value without side
/// effects a policy cares about. Lower case, unqualified.
const READ_ONLY: &[&str] = &[
    // Aggregates and windows.
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "bit_xor",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_slope",
    "regr_intercept",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    "group_concat",
    "json_arrayagg",
    "json_objectagg",
    "any_value",
    "std",
    // Conditionals and comparison.
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "if",
    "ifnull",
    "isnull",
    "nvl",
    "interval",
    "strcmp",
    "num_nonnulls",
    "num_nulls",
    // Strings.
    "lower",
    "upper",
    "lcase",
    "ucase",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "substr",
    "substring",
    "substring_index",
    "mid",
    "left",
    "right",
    "trim",
    "ltrim",
    "rtrim",
    "btrim",
    "lpad",
    "rpad",
    "concat",
    "concat_ws",
    "replace",
    "reverse",
    "repeat",
    "position",
    "strpos",
    "locate",
    "instr",
    "split_part",
    "initcap",
    "format",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "md5",
    "sha1",
    "sha2",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "encode",
    "decode",
    "to_hex",
    "hex",
    "unhex",
    "ascii",
    "chr",
    "char",
    "ord",
    "translate",
    "regexp_replace",
    "regexp_match",
    "regexp_matches",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_like",
    "regexp_substr",
    "regexp_instr",
    "regexp_count",
    "starts_with",
    "string_to_array",
    "array_to_string",
    "to_char",
    "to_number",
    "to_date",
    "to_timestamp",
    "space",
    "field",
    "find_in_set",
    "elt",
    "insert",
    "soundex",
    "difference",
    "bin",
    "oct",
    "conv",
    "format_bytes",
    "quote",
    "to_base64",
    "from_base64",
    "crc32",
    "inet_aton",
    "inet_ntoa",
    "weight_string",
    "convert",
    "cast",
    "collation",
    "charset",
    "coercibility",
    "uuid",
    "uuid_short",
    "gen_random_uuid",
    "uuid_generate_v4",
    "normalize",
    "unistr",
    "overlay",
    "string_to_table",
    "parse_ident",
    "char_length",
    "octet_length",
    "sys_guid",
    // Numbers.
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "truncate",
    "mod",
    "power",
    "pow",
    "sqrt",
    "cbrt",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "sign",
    "pi",
    "degrees",
    "radians",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "cot",
    "random",
    "rand",
    "div",
    "gcd",
    "lcm",
    "factorial",
    "width_bucket",
    "scale",
    "trim_scale",
    "min_scale",
    "crc32c",
    "setseed",
    // Dates and times.
    "now",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "date_trunc",
    "date_part",
    "extract",
    "age",
    "date_bin",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    "curdate",
    "curtime",
    "sysdate",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "date",
    "time",
    "timestamp",
    "year",
    "month",
    "day",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "hour",
    "minute",
    "second",
    "microsecond",
    "week",
    "weekday",
    "weekofyear",
    "yearweek",
    "quarter",
    "monthname",
    "dayname",
    "date_add",
    "date_sub",
    "adddate",
    "subdate",
    "addtime",
    "subtime",
    "datediff",
    "timediff",
    "timestampdiff",
    "timestampadd",
    "date_format",
    "time_format",
    "str_to_date",
    "from_unixtime",
    "unix_timestamp",
    "from_days",
    "to_days",
    "to_seconds",
    "sec_to_time",
    "time_to_sec",
    "last_day",
    "makedate",
    "maketime",
    "period_add",
    "period_diff",
    "convert_tz",
    "get_format",
    "timezone",
    // JSON and arrays.
    "to_json",
    "to_jsonb",
    "row_to_json",
    "array_to_json",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "json_object",
    "jsonb_object",
    "json_array",
    "json_extract",
    "json_extract_path",
    "json_extract_path_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "json_array_length",
    "jsonb_array_length",
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
    "json_typeof",
    "jsonb_typeof",
    "jsonb_set",
    "jsonb_insert",
    "jsonb_pretty",
    "jsonb_strip_nulls",
    "json_strip_nulls",
    "jsonb_path_query",
    "jsonb_path_exists",
    "jsonb_path_match",
    "json_object_keys",
    "jsonb_object_keys",
    "json_populate_record",
    "jsonb_populate_record",
    "json_to_record",
    "jsonb_to_record",
    "json_to_recordset",
    "jsonb_to_recordset",
    "json_unquote",
    "json_contains",
    "json_contains_path",
    "json_keys",
    "json_length",
    "json_valid",
    "json_type",
    "json_quote",
    "json_set",
    "json_insert",
    "json_replace",
    "json_remove",
    "json_merge_patch",
    "json_merge_preserve",
    "json_search",
    "json_value",
    "json_query",
    "json_table",
    "json_depth",
    "json_pretty",
    "json_exists",
    "json_overlaps",
    "json_scalar",
    "json_serialize",
    "json_detailed",
    "json_compact",
    "json_loose",
    "json_normalize",
    "array_length",
    "array_lower",
    "array_upper",
    "array_ndims",
    "array_dims",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_remove",
    "array_replace",
    "array_position",
    "array_positions",
    "array_fill",
    "cardinality",
    "unnest",
    "generate_series",
    "generate_subscripts",
    "array",
    "row",
    "range_merge",
    "lower_inf",
    "upper_inf",
    "isempty",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
    "to_tsvector",
    "to_tsquery",
    "plainto_tsquery",
    "phraseto_tsquery",
    "websearch_to_tsquery",
    "ts_rank",
    "ts_rank_cd",
    "ts_headline",
    "setweight",
    "match",
    "against",
    "xmlelement",
    "xmlforest",
    "xmlagg",
    "xmlconcat",
    "xmlparse",
    "xmlserialize",
    "xpath",
    "xpath_exists",
    "exists",
    "grouping",
    "tableoid",
    // Catalog, session and server information (what drivers ask at connect).
    "version",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_catalog",
    "current_user",
    "current_role",
    "session_user",
    "user",
    "system_user",
    "database",
    "schema",
    "connection_id",
    "last_insert_id",
    "row_count",
    "found_rows",
    "pg_backend_pid",
    "inet_client_addr",
    "inet_client_port",
    "inet_server_addr",
    "inet_server_port",
    "pg_postmaster_start_time",
    "pg_conf_load_time",
    "current_setting",
    "current_query",
    "txid_current",
    "pg_current_xact_id",
    "txid_current_if_assigned",
    "pg_is_in_recovery",
    "format_type",
    "pg_get_expr",
    "pg_get_constraintdef",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "pg_get_triggerdef",
    "pg_get_functiondef",
    "pg_get_function_arguments",
    "pg_get_function_result",
    "pg_get_function_identity_arguments",
    "pg_get_keywords",
    "pg_get_userbyid",
    "pg_get_serial_sequence",
    "pg_get_ruledef",
    "pg_get_statisticsobjdef",
    "pg_get_partkeydef",
    "pg_get_partition_constraintdef",
    "pg_get_statisticsobjdef_columns",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_opclass_is_visible",
    "pg_collation_is_visible",
    "pg_conversion_is_visible",
    "pg_statistics_obj_is_visible",
    "pg_ts_config_is_visible",
    "pg_operator_is_visible",
    "pg_encoding_to_char",
    "pg_char_to_encoding",
    "pg_client_encoding",
    "obj_description",
    "col_description",
    "shobj_description",
    "has_table_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_column_privilege",
    "has_any_column_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "has_type_privilege",
    "has_language_privilege",
    "has_tablespace_privilege",
    "has_server_privilege",
    "pg_has_role",
    "row_security_active",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_database_size",
    "pg_size_pretty",
    "pg_column_size",
    "pg_relation_filenode",
    "pg_relation_filepath",
    "pg_typeof",
    "pg_index_column_has_property",
    "pg_index_has_property",
    "pg_indexam_has_property",
    "pg_get_serial_sequence",
    "pg_sequence_last_value",
    "pg_stat_get_numscans",
    "pg_tablespace_location",
    "pg_options_to_table",
    "pg_get_replica_identity_index",
    "array_in",
    "textin",
    "regclass",
    "regtype",
    "regproc",
    "to_regclass",
    "to_regtype",
    "to_regproc",
    "to_regprocedure",
    "to_regnamespace",
    "to_regrole",
    "pg_my_temp_schema",
    "pg_is_other_temp_schema",
    "pg_jit_available",
    "pg_listening_channels",
    "pg_notification_queue_usage",
    "pg_trigger_depth",
    "pg_current_snapshot",
    "pg_visible_in_snapshot",
    "pg_xact_status",
    "pg_last_committed_xact",
    "pg_partition_root",
    "pg_partition_tree",
    "pg_partition_ancestors",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "sleep",
    "benchmark",
    "found_rows",
    "last_value",
    "pg_stat_get_backend_idset",
    "pg_stat_get_activity",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_describe_object",
    "pg_identify_object",
    "pg_identify_object_as_address",
    "pg_get_object_address",
    "pg_event_trigger_ddl_commands",
    "pg_catalog",
    "master_pos_wait",
    "is_free_lock",
    "is_used_lock",
    "database_to_xml",
    "icu_version",
    "pg_char_length",
    "version_comment",
    "currval",
    "lastval",
    "values",
];

/// The helper functions of PostgreSQL's information_schema (pgjdbc calls
/// `information_schema._pg_expandarray` for primary keys).
const INFORMATION_SCHEMA: &[&str] = &[
    "_pg_expandarray",
    "_pg_keysequal",
    "_pg_index_position",
    "_pg_truetypid",
    "_pg_truetypmod",
    "_pg_char_max_length",
    "_pg_char_octet_length",
    "_pg_numeric_precision",
    "_pg_numeric_precision_radix",
    "_pg_numeric_scale",
    "_pg_datetime_precision",
    "_pg_interval_type",
];

/// PostgreSQL built-ins that the catalog calls volatile but that change
/// nothing a policy protects.
const PG_VOLATILE_HARMLESS: &[&str] = &[
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "currval",
    "lastval",
    "setseed",
    "txid_current_if_assigned",
    "pg_current_xact_id_if_assigned",
    "pg_backend_pid",
    "current_query",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_database_size",
    "pg_indexes_size",
    "pg_relation_size",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_is_in_recovery",
    "pg_jit_available",
    "pg_last_committed_xact",
    "pg_notification_queue_usage",
    "pg_partition_ancestors",
    "pg_partition_tree",
    "pg_sequence_last_value",
    "pg_xact_status",
];

/// Names in the shared list that only PostgreSQL has built in: in MySQL
/// they can only be stored functions.
fn postgres_only(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "pg_",
        "jsonb",
        "array_",
        "has_",
        "txid",
        "to_reg",
        "json_build",
        "json_agg",
        "json_each",
        "json_populate",
        "json_to_record",
        "json_object_agg",
        "json_extract_path",
        "json_array_elements",
        "json_strip",
        "json_object_keys",
        "json_typeof",
        "regexp_split",
        "regexp_match",
        "generate_",
        "to_ts",
        "ts_",
        "xpath",
        "string_to",
        "justify_",
        "make_",
        "int4range",
        "int8range",
        "numrange",
        "tsrange",
        "tstzrange",
        "daterange",
        "date_bin",
        "inet_",
        "quote_",
        "num_non",
        "num_nulls",
    ];
    const NAMES: &[&str] = &[
        "unnest",
        "string_agg",
        "row_to_json",
        "to_json",
        "to_jsonb",
        "format_type",
        "current_setting",
        "obj_description",
        "col_description",
        "shobj_description",
        "current_schemas",
        "current_query",
        "bool_and",
        "bool_or",
        "every",
        "cardinality",
        "setweight",
        "isfinite",
        "age",
        "date_part",
        "date_trunc",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "strpos",
        "split_part",
        "btrim",
        "initcap",
        "translate",
        "to_char",
        "to_number",
        "to_date",
        "to_timestamp",
        "encode",
        "decode",
        "chr",
        "lower_inf",
        "upper_inf",
        "isempty",
        "range_merge",
        "width_bucket",
        "scale",
        "trim_scale",
        "min_scale",
        "cbrt",
        "gcd",
        "lcm",
        "factorial",
        "setseed",
        "gen_random_uuid",
        "uuid_generate_v4",
        "parse_ident",
        "unistr",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "regr_slope",
        "regr_intercept",
        "corr",
        "covar_pop",
        "covar_samp",
        "textin",
        "array_in",
        "regclass",
        "regtype",
        "regproc",
        "tableoid",
        "xmlagg",
        "database_to_xml",
        "icu_version",
        "current_catalog",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// Whether PostgreSQL's catalog calls a built-in non-volatile (or it is
/// syntax): a column default made of such calls does not rewrite the table.
pub fn pg_non_volatile(name: &str) -> bool {
    PG_STABLE.contains(name) || PG_SYNTAX.contains(&name)
}

/// PostgreSQL syntax that sqlparser shows as a function call but that is
/// no function in the catalog (so nothing can shadow it, unquoted).
pub const PG_SYNTAX: &[&str] = &[
    "array",
    "cast",
    "coalesce",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "exists",
    "greatest",
    "grouping",
    "least",
    "localtime",
    "localtimestamp",
    "nullif",
    "row",
    "trim",
    "system_user",
    "user",
    "xmlconcat",
    "xmlelement",
    "xmlforest",
    "xmlparse",
    "xmlserialize",
    "extract",
    "position",
    "substring",
    "overlay",
    "session_user",
    "current_user",
    "current_schema",
    "collation",
    "treat",
    "normalize",
];

/// Functions with a risk of their own.
const RISKY: &[(&str, Tag)] = &[
    ("nextval", Tag::WriteUpdate),
    ("setval", Tag::WriteUpdate),
    ("pg_advisory_lock", Tag::WriteLock),
    ("pg_advisory_xact_lock", Tag::WriteLock),
    ("pg_advisory_lock_shared", Tag::WriteLock),
    ("pg_advisory_xact_lock_shared", Tag::WriteLock),
    ("pg_try_advisory_lock", Tag::WriteLock),
    ("pg_try_advisory_xact_lock", Tag::WriteLock),
    ("pg_try_advisory_lock_shared", Tag::WriteLock),
    ("pg_try_advisory_xact_lock_shared", Tag::WriteLock),
    ("pg_advisory_unlock", Tag::WriteLock),
    ("pg_advisory_unlock_all", Tag::WriteLock),
    ("pg_advisory_unlock_shared", Tag::WriteLock),
    ("get_lock", Tag::WriteLock),
    ("release_lock", Tag::WriteLock),
    ("release_all_locks", Tag::WriteLock),
    ("pg_notify", Tag::WriteNotify),
    ("pg_logical_emit_message", Tag::AdminMaintenance),
    ("pg_terminate_backend", Tag::AdminKill),
    ("pg_cancel_backend", Tag::AdminKill),
    ("pg_reload_conf", Tag::AdminConfig),
    ("pg_rotate_logfile", Tag::AdminConfig),
    ("pg_switch_wal", Tag::AdminMaintenance),
    ("pg_create_restore_point", Tag::AdminMaintenance),
    ("pg_start_backup", Tag::AdminMaintenance),
    ("pg_stop_backup", Tag::AdminMaintenance),
    ("pg_backup_start", Tag::AdminMaintenance),
    ("pg_backup_stop", Tag::AdminMaintenance),
    ("pg_stat_reset", Tag::AdminMaintenance),
    ("pg_stat_reset_shared", Tag::AdminMaintenance),
    ("pg_create_logical_replication_slot", Tag::AdminMaintenance),
    ("pg_create_physical_replication_slot", Tag::AdminMaintenance),
    ("pg_drop_replication_slot", Tag::AdminMaintenance),
    ("pg_promote", Tag::AdminMaintenance),
    ("pg_read_file", Tag::FileRead),
    ("pg_read_binary_file", Tag::FileRead),
    ("pg_ls_dir", Tag::FileRead),
    ("pg_stat_file", Tag::FileRead),
    ("pg_ls_logdir", Tag::FileRead),
    ("pg_ls_waldir", Tag::FileRead),
    ("pg_ls_tmpdir", Tag::FileRead),
    ("pg_ls_archive_statusdir", Tag::FileRead),
    ("lo_import", Tag::FileRead),
    ("load_file", Tag::FileRead),
    ("lo_export", Tag::FileWrite),
    ("pg_file_write", Tag::FileWrite),
    ("pg_file_rename", Tag::FileWrite),
    ("pg_file_unlink", Tag::FileWrite),
    ("pg_logdir_ls", Tag::FileRead),
];

static READ_ONLY_SET: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| READ_ONLY.iter().copied().collect());

/// PostgreSQL's non-volatile catalog functions (see the file's header).
static PG_STABLE: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("pg_stable_functions.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});
static RISKY_MAP: LazyLock<HashMap<&'static str, Tag>> =
    LazyLock::new(|| RISKY.iter().copied().collect());

/// Tags a call of the function `name` adds. `schema` is its qualifier,
/// if any: only unqualified names and `pg_catalog.` ones are built-ins.
/// PostgreSQL's own non-volatile functions are known from its catalog;
/// MySQL's from the list above. Unknown functions are `code.function`.
pub fn function_tags(dialect: SqlDialect, schema: Option<&str>, name: &str) -> TagSet {
    let lower = name.to_ascii_lowercase();
    if dialect == SqlDialect::Postgres
        && schema.is_some_and(|s| s.eq_ignore_ascii_case("information_schema"))
        && INFORMATION_SCHEMA.contains(&lower.as_str())
    {
        return TagSet::EMPTY;
    }
    let builtin = match schema {
        None => true,
        Some(s) => s.eq_ignore_ascii_case("pg_catalog"),
    };
    if builtin {
        if let Some(tag) = RISKY_MAP.get(lower.as_str()) {
            return TagSet::of(*tag);
        }
        // PostgreSQL: the catalog's word, plus the volatile built-ins that
        // change nothing; MySQL: the list above. A name of the other
        // dialect's list is a user function here (B8: `database()` in
        // PostgreSQL resolves through search_path).
        let known = match dialect {
            SqlDialect::Postgres => {
                PG_STABLE.contains(lower.as_str())
                    || PG_VOLATILE_HARMLESS.contains(&lower.as_str())
                    || (schema.is_none() && PG_SYNTAX.contains(&lower.as_str()))
            }
            SqlDialect::Mysql => READ_ONLY_SET.contains(lower.as_str()) && !postgres_only(&lower),
        };
        if known {
            return TagSet::EMPTY;
        }
    }
    TagSet::of(Tag::CodeFunction)
}

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

#[cfg(test)]
mod tests {
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
}

use super::*;

#[test]
fn the_shipped_example_policies_load() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Policy::load(&["policies/*.toml".to_owned()], base).unwrap();
    assert_eq!(p.rules.len(), 2);
    assert_eq!(
        p.masks.len(),
        4,
        "policies/masking.toml: the issue's example"
    );
}

const EXAMPLE: &str = r#"
[[rule]]
name = "agents-read-only"
groups = ["agents"]          # or users = ["..."]
targets = ["*"]
allow  = ["read", "tx", "session"]
review = ["write"]
deny   = ["ddl", "dcl", "admin", "file", "code", "unknown"]

[[rule]]
name = "ci-migrations"
users = ["ci"]
targets = ["app"]
allow  = ["read", "write", "ddl", "tx", "session"]
review = ["ddl.drop", "ddl.truncate", "write.unbounded"]

[defaults]
unmatched = "deny"      # a tag that no matching rule names
parse_error = "deny"    # a statement the parser cannot read: deny | review
"#;

fn load(text: &str) -> Result<Policy, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    Policy::load(&["*.toml".to_owned()], dir.path())
}

fn set(tags: &[Tag]) -> TagSet {
    tags.iter().copied().collect()
}

#[test]
fn the_issue_example_judges_as_written() {
    let policy = load(EXAMPLE).unwrap();
    let agent = policy.table("agent", &["agents".to_owned()], "app");
    assert_eq!(
        agent.decide(set(&[Tag::Read]), true).verdict,
        Verdict::Allow
    );
    assert_eq!(
        agent.decide(set(&[Tag::WriteDelete]), true).verdict,
        Verdict::Review
    );
    assert_eq!(
        agent.decide(set(&[Tag::Read, Tag::DdlDrop]), true).verdict,
        Verdict::Deny
    );
    assert!(
        agent.read_only(false),
        "reviewed writes cannot run yet: the session is read-only"
    );

    let ci = policy.table("ci", &[], "app");
    assert_eq!(
        ci.decide(set(&[Tag::DdlCreate]), true).verdict,
        Verdict::Allow
    );
    let drop = ci.decide(set(&[Tag::DdlDrop]), true);
    assert_eq!(drop.verdict, Verdict::Review);
    assert_eq!(&*drop.deciding.unwrap().1.entry, "ddl.drop");
    assert_eq!(
        ci.decide(set(&[Tag::WriteDelete, Tag::WriteUnbounded]), true)
            .verdict,
        Verdict::Review
    );
    // Not named by ci's rule: the default.
    assert_eq!(
        ci.decide(set(&[Tag::DclGrant]), true).verdict,
        Verdict::Deny
    );
    assert_eq!(ci.decide(set(&[Tag::Read]), false).verdict, Verdict::Deny);
    assert!(!ci.read_only(false), "ci may write");
    // ci on another target: no rule at all.
    let elsewhere = policy.table("ci", &[], "other");
    assert_eq!(
        elsewhere.decide(set(&[Tag::Read]), true).verdict,
        Verdict::Deny
    );
    assert!(elsewhere.read_only(false));
}

#[test]
fn strictest_rule_wins_across_rules() {
    let policy = load(
        r#"
[[rule]]
name = "a"
users = ["u"]
targets = ["*"]
allow = ["write"]
[[rule]]
name = "b"
users = ["u"]
targets = ["t"]
deny = ["write.delete"]
"#,
    )
    .unwrap();
    let t = policy.table("u", &[], "t");
    let d = t.decide(set(&[Tag::WriteDelete]), true);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.deciding.unwrap().1.rule.as_deref(), Some("b"));
    assert_eq!(
        t.decide(set(&[Tag::WriteInsert]), true).verdict,
        Verdict::Allow
    );
}

#[test]
fn problems_name_file_line_and_key() {
    let err = load(
        "[[rule]]\nname = \"x\"\nusers = [\"u\"]\ntargets = [\"*\"]\nallow = [\"reed\"]\n\n[defaults]\nparse_error = \"allow\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("p.toml:5: rule \"x\".allow: unknown tag \"reed\""),
        "{err}"
    );
    assert!(err.contains("p.toml:8: defaults.parse_error"), "{err}");
    let err = load("[[rule]]\nname = \"x\"\nallow = [\"read\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("names no users and no groups"), "{err}");
    assert!(err.contains("needs targets"), "{err}");
    let err = load("[[rule]]\nnam = \"x\"\n").unwrap_err().to_string();
    assert!(err.contains("p.toml:2"), "{err}");
}

#[test]
fn the_issue_mask_example_loads_and_errors_name_the_line() {
    let policy = load(
        r#"
[[mask]]
name = "customer-contact"
columns = ["public.customers.email", "shop.customers.email"]  # schema.table.column; * wildcards
function = "email"            # j***@example.com
except_groups = ["dba"]       # or except_users
targets = ["*"]

[[mask]]
name = "national-id"
columns = ["*.customers.ssn"]
function = { keep_last = 4 }  # ***-**-6789

[[mask]]
columns = ["*.customers.card"]
function = "redact"

[[mask]]
columns = ["*.*.salary"]
function = "null"
"#,
    )
    .unwrap();
    assert_eq!(policy.masks.len(), 4);
    assert_eq!(policy.masks[2].name, "mask #3 (*.customers.card)");
    assert!(!policy.masks[0].applies("alice", &["dba".to_owned()], "app"));
    let err = load("[[mask]]\ncolumns = [\"customers.ssn\"]\nfunction = \"rot13\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p.toml:2: mask \"mask #1 (customers.ssn)\".columns"),
        "{err}"
    );
    assert!(
        err.contains(
            "p.toml:3: mask \"mask #1 (customers.ssn)\".function: unknown masking function"
        ),
        "{err}"
    );
}

#[test]
fn a_pattern_that_matches_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Policy::load(&["nope/*.toml".to_owned()], dir.path()).unwrap_err();
    assert!(err.to_string().contains("no file matches"));
}

use std::path::Path;

use serde_json::json;

use super::*;
use crate::config::Config;

/// A configuration with one target `app`, a password user `agent`, and
/// `oidc` appended (offline: the user's password file is not read).
fn load(oidc: &str) -> Result<Config, crate::config::ConfigError> {
    let text = format!(
        r#"
[postgres]
listen = "127.0.0.1:0"

[[target]]
name = "app"
kind = "postgres"
host = "127.0.0.1"
database = "app"
user = "app_owner"

[[user]]
name = "agent"
scram_verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2VydmU="
targets = ["app"]
{oidc}"#
    );
    Config::parse(Path::new("sqlgate.toml"), &text)
}

const GOOD: &str = r#"
[[oidc]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audiences = ["sqlgate"]
targets = ["app"]
user_claim = "email"
groups_claim = "groups"

[[oidc.identity]]
when = { repository_id = "123456", ref = ["refs/heads/main", "refs/heads/release"] }
user = "ci-migrate"
groups = ["ci"]

[[oidc.identity]]
when = { repository_id = 123456, environment = "production" }
user = "ci-deploy"
"#;

#[test]
fn a_provider_block_loads_with_its_defaults() {
    let c = load(GOOD).unwrap();
    let p = &c.oidc[0];
    assert_eq!(p.algorithms, vec![Algorithm::RS256], "RS256 by default");
    assert_eq!(p.leeway, Duration::from_secs(30));
    assert!(p.end_at_expiry, "on_expiry = \"end\" by default");
    assert_eq!(p.identities.len(), 2);
    assert_eq!(
        p.identities[1].when,
        vec![
            ("environment".to_owned(), vec!["production".to_owned()]),
            ("repository_id".to_owned(), vec!["123456".to_owned()]),
        ],
        "numbers compare as their text"
    );
}

#[test]
fn check_names_file_line_and_key_of_every_problem() {
    let err = load(
        r#"
[[oidc]]
name = "agent"
issuer = "http://login.example.com"
algorithms = ["HS256", "none", "RS256"]
targets = ["nope"]
leeway_secs = 3600
on_expiry = "never"
"#,
    )
    .unwrap_err();
    let problems = err.problems.join("\n");
    for want in [
        "sqlgate.toml:18: oidc \"agent\" name: is also a [[user]]",
        "sqlgate.toml:19: oidc \"agent\" issuer: must be an https:// URL",
        "oidc \"agent\" audiences: is required",
        "oidc \"agent\" algorithms: \"HS256\" is never accepted",
        "oidc \"agent\" algorithms: \"none\" is never accepted",
        "oidc \"agent\" targets: no target named \"nope\"",
        "oidc \"agent\" leeway_secs: must be at most 300",
        "oidc \"agent\" on_expiry: must be \"end\" or \"keep\"",
        "oidc \"agent\" identity: needs [[oidc.identity]] rules or user_claim",
    ] {
        assert!(problems.contains(want), "{want} in\n{problems}");
    }
}

fn provider() -> Provider {
    load(GOOD).unwrap().oidc.remove(0)
}

fn claims(v: serde_json::Value) -> Map<String, Value> {
    let mut c = json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:acme/app:ref:refs/heads/main",
        "exp": 4_000_000_000u64,
    });
    c.as_object_mut()
        .unwrap()
        .extend(v.as_object().unwrap().clone());
    c.as_object().unwrap().clone()
}

#[test]
fn the_first_rule_whose_claims_all_match_decides_the_identity() {
    let p = provider();
    let none = HashSet::new();
    let id = identity_of(
        &p,
        &claims(json!({"repository_id": "123456", "ref": "refs/heads/release"})),
        &none,
    )
    .unwrap();
    assert_eq!(
        (id.user.as_str(), id.groups.clone()),
        ("ci-migrate", vec!["ci".to_owned()])
    );
    let Login::Token(t) = &id.login else {
        panic!("a token login")
    };
    assert_eq!(
        t.matched,
        vec![
            ("ref".to_owned(), "refs/heads/release".to_owned()),
            ("repository_id".to_owned(), "123456".to_owned())
        ]
    );
    assert_eq!(t.subject, "repo:acme/app:ref:refs/heads/main");
    // A number claim matches the rule's text; an array claim matches by
    // an element.
    let id = identity_of(
        &p,
        &claims(json!({"repository_id": 123456, "ref": "refs/heads/x", "environment": ["staging", "production"]})),
        &none,
    )
    .unwrap();
    assert_eq!(id.user, "ci-deploy");
    // One claim off: no rule; the user claim then decides.
    let id = identity_of(
        &p,
        &claims(
            json!({"repository_id": "654321", "email": "jane@example.com", "email_verified": true, "groups": ["dba", 7]}),
        ),
        &none,
    )
    .unwrap();
    assert_eq!(
        (id.user.as_str(), id.groups.clone()),
        ("jane@example.com", vec!["dba".to_owned()])
    );
    assert_eq!(
        identity_of(&p, &claims(json!({"repository_id": "654321"})), &none),
        Err(TokenRefusal::NoIdentity)
    );
}

#[test]
fn a_user_claim_never_takes_a_reserved_name_an_unverified_email_or_a_control_character() {
    let c = load(GOOD).unwrap();
    let providers = Providers::new(&c.oidc, &["agent".to_owned()]).unwrap();
    let p = &c.oidc[0];
    let verified = |email: &str| claims(json!({"email": email, "email_verified": true}));
    // A password user, a rule's identity, a provider.
    for name in ["agent", "ci-deploy", "github"] {
        assert_eq!(
            identity_of(p, &verified(name), &providers.reserved),
            Err(TokenRefusal::NamesGatewayUser),
            "{name}"
        );
    }
    assert_eq!(
        identity_of(
            p,
            &claims(json!({"email": "jane@example.com"})),
            &providers.reserved
        ),
        Err(TokenRefusal::UnusableUser),
        "an email the issuer has not verified"
    );
    assert_eq!(
        identity_of(
            p,
            &verified("jane@example.com\nforged"),
            &providers.reserved
        ),
        Err(TokenRefusal::UnusableUser)
    );
}

#[test]
fn groups_from_a_claim_are_limited_to_groups_allowed() {
    let mut p = provider();
    p.groups_allowed = Some(vec!["agents".to_owned()]);
    let id = identity_of(
        &p,
        &claims(json!({"email": "jane@example.com", "email_verified": true, "groups": ["dba", "agents"]})),
        &HashSet::new(),
    )
    .unwrap();
    assert_eq!(id.groups, vec!["agents".to_owned()]);
}

#[test]
fn a_rule_identity_may_not_be_a_password_users_name() {
    let err = load(&GOOD.replace("user = \"ci-deploy\"", "user = \"agent\"")).unwrap_err();
    assert!(
        err.to_string()
            .contains("identity.user: is a [[user]]'s name"),
        "{err}"
    );
}

#[test]
fn sessions_end_at_expiry_unless_the_provider_keeps_them() {
    let mut p = provider();
    let c = claims(json!({"repository_id": "123456", "ref": "refs/heads/main"}));
    let id = identity_of(&p, &c, &HashSet::new()).unwrap();
    assert_eq!(
        id.ends_at(),
        Some(UNIX_EPOCH + Duration::from_secs(4_000_000_000))
    );
    p.end_at_expiry = false;
    assert_eq!(
        identity_of(&p, &c, &HashSet::new()).unwrap().ends_at(),
        None
    );
}

#[test]
fn an_unsigned_token_is_an_algorithm_refusal_and_garbage_is_malformed() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none"}"#),
        b64.encode(b"{}")
    );
    assert_eq!(unreadable_header(&none), TokenRefusal::Algorithm);
    assert_eq!(unreadable_header("x.y.z"), TokenRefusal::Malformed);
}

/// The `[[oidc]]` blocks the README and docs/github-actions.md show.
fn documented_blocks() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut blocks = Vec::new();
    for file in ["README.md", "docs/github-actions.md", "policies/README.md"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let block = block.split("```").next().unwrap();
            if block.trim_start().starts_with("[[oidc]]") {
                blocks.push(block.to_owned());
            }
        }
    }
    blocks
}

#[test]
fn the_documented_blocks_pass_check() {
    let blocks = documented_blocks();
    assert_eq!(
        blocks.len(),
        3,
        "the README's, the GitHub Actions guide's, the policies'"
    );
    for block in blocks {
        let c = load(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert!(c.oidc.iter().any(|p| p.name == "github"), "{block}");
    }
}

//! Configuration layering and its error messages.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use roster::config::{Config, Durability};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_without_a_file() {
    let config =
        Config::load_with_env(Path::new("/nonexistent/config.toml"), false, &env(&[])).unwrap();
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(config.server.max_body_bytes, 65536);
    assert_eq!(config.session.ttl, Duration::from_secs(1800));
    assert_eq!(config.session.max_history, 10);
    assert_eq!(config.limits.messages_per_hour, 50);
    assert_eq!(config.limits.searches_per_hour, 30);
    assert_eq!(config.storage.durability, Durability::Strict);
    assert_eq!(config.twilio.auth_token(), None);
}

#[test]
fn the_shipped_config_toml_is_the_defaults() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let mut config = Config::load_with_env(&shipped, true, &env(&[])).unwrap();
    let defaults = Config::default();
    // The one setting the file shows with the sample organisation's value.
    assert_eq!(config.directory.org_name, "Sahyadri Alumni Network");
    config.directory.org_name = defaults.directory.org_name.clone();
    // Every section, every setting.
    assert_eq!(
        serde_json::to_value(&config).unwrap(),
        serde_json::to_value(&defaults).unwrap()
    );
}

#[test]
fn a_named_file_must_exist() {
    let error =
        Config::load_with_env(Path::new("/nonexistent/roster.toml"), true, &env(&[])).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/roster.toml"),
        "{error}"
    );
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "[server]\nbind = \"0.0.0.0:8000\"\nmax_body_bytes = 2048\n[session]\nttl = \"5m\"\n[limits]\nmessages_per_hour = 10\n",
    );
    let from_file = Config::load_with_env(&path, true, &env(&[])).unwrap();
    assert_eq!(from_file.server.bind.to_string(), "0.0.0.0:8000");
    assert_eq!(from_file.session.ttl, Duration::from_secs(300));
    assert_eq!(from_file.limits.messages_per_hour, 10);

    let overridden = Config::load_with_env(
        &path,
        true,
        &env(&[
            ("ROSTER_SERVER__BIND", "127.0.0.1:9000"),
            ("ROSTER_SESSION__TTL", "45m"),
            ("ROSTER_LIMITS__MESSAGES_PER_HOUR", "20"),
            ("ROSTER_STORAGE__DURABILITY", "relaxed"),
            ("ROSTER_TWILIO__AUTH_TOKEN", "0123"),
        ]),
    )
    .unwrap();
    assert_eq!(overridden.server.bind.to_string(), "127.0.0.1:9000");
    assert_eq!(
        overridden.server.max_body_bytes, 2048,
        "untouched keys keep the file's value"
    );
    assert_eq!(overridden.session.ttl, Duration::from_secs(45 * 60));
    assert_eq!(overridden.limits.messages_per_hour, 20);
    assert_eq!(overridden.storage.durability, Durability::Relaxed);
    assert_eq!(
        overridden.twilio.auth_token(),
        Some("0123"),
        "tokens stay text"
    );
}

#[test]
fn legacy_node_names_are_honoured_and_roster_names_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "[server]\nbind = \"0.0.0.0:8000\"\n");
    let legacy = env(&[
        ("TWILIO_AUTH_TOKEN", "legacy-token"),
        ("PORT", "8080"),
        ("RATE_LIMIT_MESSAGES_PER_HOUR", "70"),
        ("RATE_LIMIT_SEARCHES_PER_HOUR", "40"),
    ]);
    let config = Config::load_with_env(&path, true, &legacy).unwrap();
    assert_eq!(config.twilio.auth_token(), Some("legacy-token"));
    assert_eq!(
        config.server.bind.to_string(),
        "0.0.0.0:8080",
        "PORT changes only the port"
    );
    assert_eq!(config.limits.messages_per_hour, 70);
    assert_eq!(config.limits.searches_per_hour, 40);

    let mut both = legacy.clone();
    both.insert("ROSTER_LIMITS__MESSAGES_PER_HOUR".into(), "5".into());
    both.insert("ROSTER_TWILIO__AUTH_TOKEN".into(), "new-token".into());
    let config = Config::load_with_env(&path, true, &both).unwrap();
    assert_eq!(config.limits.messages_per_hour, 5);
    assert_eq!(config.twilio.auth_token(), Some("new-token"));
}

fn error_for(file: &str, vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), file);
    Config::load_with_env(&path, true, &env(vars))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_values_name_the_key_the_value_and_what_is_allowed() {
    // (config file, environment, what the message must mention)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 10] = [
        (
            "[storage]\ndurability = \"sometimes\"\n",
            &[],
            &["durability", "sometimes", "strict", "relaxed"],
        ),
        (
            "",
            &[("ROSTER_STORAGE__DURABILITY", "fast")],
            &["durability", "fast", "strict"],
        ),
        (
            "[server]\nmax_body_bytes = 10\n",
            &[],
            &["server.max_body_bytes", "10", "1024"],
        ),
        (
            "",
            &[("ROSTER_SESSION__MAX_HISTORY", "0")],
            &["session.max_history", "0", "1 to 1000"],
        ),
        (
            "",
            &[("RATE_LIMIT_MESSAGES_PER_HOUR", "0")],
            &["limits.messages_per_hour", "0", "at least 1"],
        ),
        (
            "[limits]\nsearches_burst = 4294967295\n",
            &[],
            &["limits.searches_burst", "4294967295", "1000000"],
        ),
        ("", &[("PORT", "http")], &["PORT", "http", "1 to 65535"]),
        ("[session]\nttl = \"soon\"\n", &[], &["session.ttl", "soon"]),
        (
            "[server]\nbind = \"localhost\"\n",
            &[],
            &["server.bind", "localhost"],
        ),
        ("[sever]\nbind = \"127.0.0.1:1\"\n", &[], &["sever"]),
    ];
    for (file, vars, needles) in cases {
        let message = error_for(file, vars);
        for needle in needles {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
    }
}

#[test]
fn a_redis_backend_needs_a_redis_url_and_the_error_never_shows_a_password() {
    let missing = Config::load_with_env(
        Path::new("/nonexistent/config.toml"),
        false,
        &env(&[("ROSTER_STORAGE__BACKEND", "redis")]),
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("storage.redis_url"), "{missing}");
    let wrong = Config::load_with_env(
        Path::new("/nonexistent/config.toml"),
        false,
        &env(&[
            ("ROSTER_STORAGE__BACKEND", "redis"),
            (
                "ROSTER_STORAGE__REDIS_URL",
                "db.example:6379?password=hunter2",
            ),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        wrong.contains("storage.redis_url") && wrong.contains("redis://"),
        "{wrong}"
    );
    assert!(!wrong.contains("hunter2"), "{wrong}");
    let backend = Config::load_with_env(
        Path::new("/nonexistent/config.toml"),
        false,
        &env(&[("ROSTER_STORAGE__BACKEND", "postgres")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        backend.contains("sled") && backend.contains("redis"),
        "{backend}"
    );
}

//! `storage.backend = "redis"`: two instances on one real redis-server
//! behave as one embedded store does (sessions, follow-ups, exact limits,
//! one message per phone at a time, duplicates, native expiry), survive a
//! Redis crash and restart, and move data between the backends.

use std::time::{Duration, Instant};

use roster::clock::Clock as _;
use roster::config::{Backend, Config};

use crate::common::redis::RedisServer;
use crate::common::{
    ADMIN_TOKEN, MEMBER, TestApp, messages, spawn_app_with, test_config, whatsapp_form,
};

/// An app on `redis` under `prefix`, admin API on.
async fn spawn_shared(
    redis: &RedisServer,
    prefix: &str,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let url = redis.url();
    let prefix = prefix.to_owned();
    spawn_app_with(move |c| {
        shared_config(c, &url, &prefix);
        tweak(c);
    })
    .await
}

fn shared_config(c: &mut Config, url: &str, prefix: &str) {
    // A copy of the directory per instance: a published directory is
    // written over the instance's own file.
    let dir = c.storage.data_dir.parent().expect("the app's temp dir");
    let members = dir.join("members.csv");
    std::fs::copy(&c.directory.members_csv, &members).expect("copy the directory");
    c.directory.members_csv = members;
    c.admin.token = ADMIN_TOKEN.to_owned();
    c.storage.backend = Backend::Redis;
    c.storage.redis_url = roster::config::Secret::new(url);
    c.storage.redis_prefix = prefix.to_owned();
}

async fn reply(app: &TestApp, from: &str, body: &str) -> String {
    let (status, twiml) = app.send_text(from, body).await;
    assert_eq!(status, 200, "{twiml}");
    messages(&twiml).join("\n")
}

#[tokio::test]
async fn a_conversation_moves_between_instances() {
    let Some(redis) = RedisServer::start("a_conversation_moves_between_instances") else {
        return;
    };
    let a = spawn_shared(&redis, "org:", |_| {}).await;
    let b = spawn_shared(&redis, "org:", |_| {}).await;
    let first = reply(&a, MEMBER, "Find doctors in Bangalore").await;
    assert!(first.contains("1."), "a numbered list: {first}");
    // The follow-up reaches the other instance: it knows what "2" means.
    let second = reply(&b, MEMBER, "2").await;
    let listed = first
        .lines()
        .find(|l| l.trim_start().starts_with("2."))
        .expect("a second result");
    let name: String = listed
        .trim_start()
        .trim_start_matches("2.")
        .trim()
        .trim_start_matches('*')
        .chars()
        .take_while(|c| c.is_alphabetic() || *c == ' ')
        .collect();
    assert!(
        !name.trim().is_empty() && second.contains(name.trim()),
        "the details of {name:?}: {second}"
    );
    // Either instance shows the whole conversation.
    for app in [&a, &b] {
        let session = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
        assert_eq!(session["messageCount"], 2, "{session}");
    }
}

#[tokio::test]
async fn a_redelivery_to_the_other_instance_gets_the_same_reply() {
    let Some(redis) = RedisServer::start("a_redelivery_to_the_other_instance_gets_the_same_reply")
    else {
        return;
    };
    let a = spawn_shared(&redis, "org:", |_| {}).await;
    let b = spawn_shared(&redis, "org:", |_| {}).await;
    let fields = whatsapp_form(MEMBER, "Find doctors in Bangalore", &a.new_sid());
    let first = a.post_fields(&fields).await.text().await.unwrap();
    let again = b.post_fields(&fields).await.text().await.unwrap();
    assert_eq!(first, again);
    let session = b.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(session["messageCount"], 1, "counted once: {session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_of_one_phone_on_two_instances_all_count() {
    let Some(redis) =
        RedisServer::start("concurrent_messages_of_one_phone_on_two_instances_all_count")
    else {
        return;
    };
    let roomy = |c: &mut Config| {
        c.limits.messages_per_hour = 1000;
        c.limits.messages_burst = 1000;
        c.limits.searches_per_hour = 1000;
        c.limits.searches_burst = 1000;
    };
    let a = spawn_shared(&redis, "org:", roomy).await;
    let b = spawn_shared(&redis, "org:", roomy).await;
    let sends = (0..24).map(|n| {
        let app = if n % 2 == 0 { &a } else { &b };
        async move { app.send_text(MEMBER, "Find doctors in Bangalore").await }
    });
    for (status, body) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
    }
    let session = a.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(session["messageCount"], 24, "no update lost: {session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_are_exact_across_instances_whose_clocks_disagree() {
    let Some(redis) = RedisServer::start("limits_are_exact_across_instances_whose_clocks_disagree")
    else {
        return;
    };
    let tight = |c: &mut Config| {
        c.limits.messages_per_hour = 5;
        c.limits.messages_burst = 5;
    };
    let a = spawn_shared(&redis, "org:", tight).await;
    // B's own clock is ten minutes behind A's: the limits do not care,
    // they run on Redis's clock.
    let b = {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        shared_config(&mut config, &redis.url(), "org:");
        tight(&mut config);
        let behind =
            roster::clock::ManualClock::new(roster::clock::SystemClock.now_ms() - 10 * 60 * 1000);
        crate::common::spawn_app_at(dir, config, false, behind).await
    };
    let sends = (0..16).map(|n| {
        let app = if n % 2 == 0 { &a } else { &b };
        async move { app.send_text(MEMBER, "hello").await }
    });
    let mut answered = 0;
    let mut told = 0;
    let mut silent = 0;
    for (status, twiml) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200, "{twiml}");
        let text = messages(&twiml).join("\n");
        if text.contains("reached the limit") {
            told += 1;
        } else if text.is_empty() {
            silent += 1;
        } else {
            answered += 1;
        }
    }
    assert_eq!(
        (answered, told, silent),
        (5, 1, 10),
        "the burst once, one notice, then silence"
    );
    // An hour later (on both instances' clocks) the quota is back.
    for app in [&a, &b] {
        app.clock.advance(Duration::from_secs(3600));
    }
    assert!(!reply(&b, MEMBER, "hello").await.contains("limit"));
}

#[tokio::test]
async fn an_answered_message_costs_two_round_trips() {
    let Some(redis) = RedisServer::start("an_answered_message_costs_two_round_trips") else {
        return;
    };
    let app = spawn_shared(&redis, "org:", |_| {}).await;
    reply(&app, MEMBER, "hello").await;
    let trips = |stats: &serde_json::Value| stats["sessions"]["redisRoundTrips"].as_u64().unwrap();
    let before = trips(&app.admin_json("/admin/stats").await);
    let calls = |redis: &RedisServer| -> u64 {
        let info: String = redis.query(redis::cmd("INFO").arg("commandstats"));
        ["cmdstat_evalsha:", "cmdstat_eval:"]
            .iter()
            .filter_map(|name| {
                let line = info.lines().find(|l| l.starts_with(name))?;
                line.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let scripts_before = calls(&redis);
    for body in ["Find doctors in Bangalore", "more", "2", "thanks"] {
        reply(&app, MEMBER, body).await;
    }
    let after = trips(&app.admin_json("/admin/stats").await);
    // The admin reads above are turns of their own; count only messages.
    let scripts = calls(&redis) - scripts_before;
    assert!(
        after - before <= 4 * 2 + 2,
        "{} round trips",
        after - before
    );
    assert!(
        scripts <= 4 * 2 + 2,
        "{scripts} script calls for 4 messages"
    );
}

#[tokio::test]
async fn records_expire_in_redis_and_sessions_by_the_shared_clock() {
    let Some(redis) =
        RedisServer::start("records_expire_in_redis_and_sessions_by_the_shared_clock")
    else {
        return;
    };
    let app = spawn_shared(&redis, "org:", |c| {
        c.session.ttl = Duration::from_secs(1800)
    })
    .await;
    reply(&app, MEMBER, "Find doctors in Bangalore").await;
    let ttl_ms: i64 = redis.query(redis::cmd("PTTL").arg(format!("org:p:{MEMBER}")));
    // The record lives while its longest part does: here the dedupe
    // window (24 h) of the reply it remembers.
    assert!(
        (23 * 3_600_000..=24 * 3_600_000).contains(&ttl_ms),
        "native expiry, {ttl_ms} ms"
    );
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{MEMBER}"))
            .await
            .status(),
        200
    );
    app.clock.advance(Duration::from_secs(1801));
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{MEMBER}"))
            .await
            .status(),
        404,
        "an expired session is absent"
    );
}

#[tokio::test]
async fn organisations_with_their_own_prefix_share_nothing() {
    let Some(redis) = RedisServer::start("organisations_with_their_own_prefix_share_nothing")
    else {
        return;
    };
    let one = spawn_shared(&redis, "one:", |_| {}).await;
    let two = spawn_shared(&redis, "two:", |_| {}).await;
    reply(&one, MEMBER, "Find doctors in Bangalore").await;
    let path = format!("/admin/sessions/{MEMBER}");
    assert_eq!(one.admin_get(&path).await.status(), 200);
    assert_eq!(two.admin_get(&path).await.status(), 404);
}

#[tokio::test]
async fn a_lost_redis_gets_503_and_a_restarted_one_keeps_everything() {
    let Some(mut redis) =
        RedisServer::start("a_lost_redis_gets_503_and_a_restarted_one_keeps_everything")
    else {
        return;
    };
    let app = spawn_shared(&redis, "org:", |c| {
        c.storage.redis_timeout = Duration::from_millis(500);
        c.storage.check_every = Duration::from_millis(50);
    })
    .await;
    reply(&app, MEMBER, "Find doctors in Bangalore").await;
    redis.kill();
    let response = app.send(MEMBER, "more").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["storageFailure"]["kind"], "redis", "{body}");
    assert!(
        !body["storageFailure"]["reason"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{body}"
    );
    redis.restart();
    // The connection comes back by itself; wait for it, bounded.
    let started = Instant::now();
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let more = reply(&app, MEMBER, "more").await;
    assert!(!more.is_empty());
    let session = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    assert_eq!(
        session["messageCount"], 2,
        "the exchange before the crash survived it (AOF), the refused one was never counted: {session}"
    );
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_naming_it_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    shared_config(&mut config, "redis://:hunter2secret@127.0.0.1:1/0", "org:");
    config.storage.redis_timeout = Duration::from_millis(300);
    let error = match roster::http::App::build(
        config,
        roster::http::Options {
            dev: false,
            clock: roster::clock::ManualClock::starting_now(),
        },
    ) {
        Ok(_) => panic!("started without Redis"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(error.contains("Redis"), "{error}");
    assert!(!error.contains("hunter2secret"), "{error}");
}

/// Export lines without the header (its time differs).
fn export_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.contains("\"header\""))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_from_sled_imports_into_redis_with_everything() {
    let Some(redis) = RedisServer::start("an_export_from_sled_imports_into_redis_with_everything")
    else {
        return;
    };
    // On the embedded store: a conversation, spent limits, an opt-out.
    let sled = spawn_app_with(|c| {
        c.admin.token = ADMIN_TOKEN.to_owned();
        c.limits.searches_per_hour = 2;
        c.limits.searches_burst = 2;
    })
    .await;
    for body in [
        "Find doctors in Bangalore",
        "Find lawyers in Chennai",
        "more",
    ] {
        reply(&sled, MEMBER, body).await;
    }
    reply(&sled, crate::common::ASHA, "STOP").await;
    let exported = sled.admin_get("/admin/export").await.text().await.unwrap();
    assert!(exported.contains(r#""type":"optout""#), "{exported}");
    let file = sled.dir.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();

    // `roster import` into Redis, as an operator moving to two VMs does.
    let target = tempfile::tempdir().unwrap();
    let mut import = crate::common::process::roster_command(target.path());
    import
        .env("ROSTER_STORAGE__BACKEND", "redis")
        .env("ROSTER_STORAGE__REDIS_URL", redis.url())
        .env("ROSTER_STORAGE__REDIS_PREFIX", "org:")
        .arg("import")
        .arg(&file);
    let (code, stderr) = crate::common::process::run_to_end(import);
    assert_eq!(code, Some(0), "{stderr}");

    let shared = spawn_shared(&redis, "org:", |c| {
        c.limits.searches_per_hour = 2;
        c.limits.searches_burst = 2;
    })
    .await;
    // Same clock reading for both exports' "is it still live" checks.
    let again = shared
        .admin_get("/admin/export")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(export_lines(&exported), export_lines(&again));
    // And the quota is the one spent on the embedded store.
    let limited = reply(&shared, MEMBER, "Find engineers in Pune").await;
    assert!(limited.contains("limit"), "{limited}");
    let stopped = shared.send_text(crate::common::ASHA, "Find doctors").await;
    assert!(
        messages(&stopped.1).is_empty(),
        "still opted out: {}",
        stopped.1
    );

    // And back: `roster export` from Redis (no server running), `roster
    // import` into a new sled data dir.
    let from_redis = shared
        .admin_get("/admin/export")
        .await
        .text()
        .await
        .unwrap();
    let file = target.path().join("from-redis.jsonl");
    let mut export = crate::common::process::roster_command(target.path());
    export
        .env("ROSTER_STORAGE__BACKEND", "redis")
        .env("ROSTER_STORAGE__REDIS_URL", redis.url())
        .env("ROSTER_STORAGE__REDIS_PREFIX", "org:")
        .arg("export")
        .arg("--out")
        .arg(&file);
    let (code, stderr) = crate::common::process::run_to_end(export);
    assert_eq!(code, Some(0), "{stderr}");
    let back = tempfile::tempdir().unwrap();
    let mut import = crate::common::process::roster_command(back.path());
    import.arg("import").arg(&file);
    let (code, stderr) = crate::common::process::run_to_end(import);
    assert_eq!(code, Some(0), "{stderr}");
    let mut config = test_config(back.path());
    config.admin.token = ADMIN_TOKEN.to_owned();
    let sled_again = crate::common::spawn_app_in(back, config, false).await;
    let again = sled_again
        .admin_get("/admin/export")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(export_lines(&from_redis), export_lines(&again));
}

/// Members in the directory an app serves, from `/readyz`.
async fn members(app: &TestApp) -> u64 {
    let ready = app.admin_json("/readyz").await;
    ready["members"].as_u64().unwrap()
}

/// Waits (bounded) until `app` serves `count` members.
async fn wait_for_members(app: &TestApp, count: u64) {
    let started = Instant::now();
    while members(app).await != count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {} members, not {count}",
            members(app).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn reload(app: &TestApp) -> u16 {
    app.admin_post("/admin/directory/reload")
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_reloaded_on_one_instance_reaches_every_instance() {
    let Some(redis) =
        RedisServer::start("a_directory_reloaded_on_one_instance_reaches_every_instance")
    else {
        return;
    };
    let a = spawn_shared(&redis, "org:", |_| {}).await;
    let b = spawn_shared(&redis, "org:", |_| {}).await;
    let before = members(&a).await;
    assert_eq!(members(&b).await, before);

    // A member added on A's file, and A reloaded.
    let file = a.state.config.directory.members_csv.clone();
    let mut text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap().to_owned();
    let added = last
        .replacen(&last[..last.find(',').unwrap()], "T999", 1)
        .replace("+91 98450 000", "+91 98450 990");
    assert_ne!(added, last, "the added row differs: {last}");
    text.push_str(&added);
    text.push('\n');
    std::fs::write(&file, &text).unwrap();
    assert_eq!(reload(&a).await, 200);
    assert_eq!(members(&a).await, before + 1);
    wait_for_members(&b, before + 1).await;
    assert_eq!(
        std::fs::read(&b.state.config.directory.members_csv).unwrap(),
        text.as_bytes(),
        "B keeps the same file"
    );

    // A file that does not load changes nothing anywhere.
    std::fs::write(&file, "this is not a directory\n").unwrap();
    assert_eq!(reload(&a).await, 422);
    // An instance started now takes the last good one.
    let c = spawn_shared(&redis, "org:", |_| {}).await;
    wait_for_members(&c, before + 1).await;
    assert_eq!(members(&a).await, before + 1);
    assert_eq!(members(&b).await, before + 1);

    // A published file that does not load where it arrives is not taken:
    // the instance keeps serving, and keeps its file to start from.
    let b_file = b.state.config.directory.members_csv.clone();
    let kept = std::fs::read(&b_file).unwrap();
    let bad = b"member_id,name\nX1,No Phone\n";
    let hash = roster::store::shared::content_hash(bad);
    let _: () = redis.query(redis::cmd("SET").arg("org:directory:file").arg(&bad[..]));
    let _: () = redis.query(redis::cmd("SET").arg("org:directory:hash").arg(&hash));
    let _: i64 = redis.query(redis::cmd("PUBLISH").arg("org:directory").arg(&hash));
    let c_file = c.state.config.directory.members_csv.clone();
    // A new instance catches up on start: it too must keep its own.
    let d = spawn_shared(&redis, "org:", |_| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(members(&b).await, before + 1);
    assert_eq!(std::fs::read(&b_file).unwrap(), kept, "B's file untouched");
    assert_eq!(members(&c).await, before + 1);
    assert!(std::fs::read(&c_file).unwrap() != bad.to_vec());
    assert_eq!(members(&d).await, before, "D serves its own file");
}

/// Waits (bounded) until `check` holds for `path`'s page on `app`.
async fn wait_for_page(
    app: &TestApp,
    signed: &crate::common::dashboard::SignedIn,
    path: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let started = Instant::now();
    loop {
        let (status, page) = app.page(signed, path).await;
        assert_eq!(status, 200);
        if check(&page) {
            return page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} never showed it: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_of_either_instance_counts_both() {
    use crate::common::dashboard::text_of;
    let Some(redis) = RedisServer::start("the_dashboard_of_either_instance_counts_both") else {
        return;
    };
    let often = |c: &mut Config| c.dashboard.flush_every = Duration::from_millis(100);
    let a = spawn_shared(&redis, "org:", often).await;
    let b = spawn_shared(&redis, "org:", often).await;
    for body in ["doctors in Bengaluru", "astronauts"] {
        reply(&a, MEMBER, body).await;
    }
    for body in ["lawyers in Chennai", "zebra whisperers"] {
        reply(&b, crate::common::ASHA, body).await;
    }
    reply(&b, MEMBER, "doctors in Bengaluru").await;
    for app in [&a, &b] {
        let signed = app.sign_in().await;
        wait_for_page(app, &signed, "/dashboard", |page| {
            text_of(page, "messages-24h").as_deref() == Some("5")
        })
        .await;
        let searches = wait_for_page(app, &signed, "/dashboard/searches", |page| {
            page.contains("zebra whisperers") && page.contains("astronauts")
        })
        .await;
        assert!(searches.contains("Lawyer · Chennai"), "{searches}");
    }
    // Forgetting the texts on one instance forgets them on both.
    let signed = a.sign_in().await;
    let csrf = [("csrf", signed.csrf.as_str())];
    let forgot = a
        .post_page(&signed, "/dashboard/searches/forget", &csrf, None)
        .await;
    assert_eq!(forgot.status(), 303);
    for app in [&a, &b] {
        let signed = app.sign_in().await;
        let page = wait_for_page(app, &signed, "/dashboard/searches", |page| {
            !page.contains("zebra whisperers") && !page.contains("astronauts")
        })
        .await;
        assert!(page.contains("(text not kept)"), "{page}");
        // And the counts stay.
        let overview = app.page(&signed, "/dashboard").await.1;
        assert_eq!(text_of(&overview, "messages-24h").as_deref(), Some("5"));
    }
    // No texts come back once both have flushed again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for app in [&a, &b] {
        let signed = app.sign_in().await;
        let page = app.page(&signed, "/dashboard/searches").await.1;
        assert!(!page.contains("zebra whisperers"), "{page}");
    }
}

/// A `roster serve` on `redis`, with a data dir of its own under `dir`.
fn start_instance(
    dir: &std::path::Path,
    redis: &RedisServer,
    members: &std::path::Path,
) -> crate::common::process::RosterProcess {
    let mut command = crate::common::process::roster_command(dir);
    command
        .arg("serve")
        .env("TWILIO_AUTH_TOKEN", crate::common::AUTH_TOKEN)
        .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
        .env("ROSTER_DIRECTORY__MEMBERS_CSV", members)
        .env("ROSTER_STORAGE__BACKEND", "redis")
        .env("ROSTER_STORAGE__REDIS_URL", redis.url())
        .env("ROSTER_STORAGE__REDIS_TIMEOUT", "300ms")
        .env("ROSTER_STORAGE__CHECK_EVERY", "50ms")
        .env("ROSTER_LIMITS__MESSAGES_PER_HOUR", "1000000")
        .env("ROSTER_LIMITS__SEARCHES_PER_HOUR", "1000000");
    crate::common::process::RosterProcess::start(command)
}

/// The webhook request for `fields` to `instance`, signed as Twilio signs.
fn signed(
    client: &reqwest::Client,
    instance: &crate::common::process::RosterProcess,
    fields: &[(String, String)],
) -> reqwest::RequestBuilder {
    let url = instance.url("/whatsapp/webhook");
    let signature =
        roster::twilio::SignatureVerifier::new(crate::common::AUTH_TOKEN).sign(&url, fields);
    client
        .post(url)
        .header("x-twilio-signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::common::encode_form(fields))
}

/// Sends `fields` to the first instance that acknowledges it (200), as
/// Twilio retries a delivery; `None` if none did within the time.
async fn deliver(
    instances: &[&crate::common::process::RosterProcess],
    fields: &[(String, String)],
) -> Option<String> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut turn = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let instance = instances[turn % instances.len()];
        turn += 1;
        let sent = signed(&client, instance, fields).send().await;
        if let Ok(response) = sent
            && response.status() == 200
        {
            return Some(response.text().await.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_an_instance_and_of_redis_loses_no_acknowledged_exchange() {
    let Some(mut redis) =
        RedisServer::start("kill_9_of_an_instance_and_of_redis_loses_no_acknowledged_exchange")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let members = root.path().join("members.csv");
    std::fs::copy(crate::common::fixture("members.csv"), &members).unwrap();
    let (dir_a, dir_b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let a = start_instance(&dir_a, &redis, &members);
    let b = start_instance(&dir_b, &redis, &members);
    let phones = [MEMBER, crate::common::ASHA, "+919845000002"];
    let mut sid = 0u64;
    let mut next = |phone: &str| {
        sid += 1;
        whatsapp_form(
            phone,
            "Find doctors in Bangalore",
            &format!("SMkill{sid:028}"),
        )
    };
    let mut acknowledged = [0u64; 3];

    // Both serve; then A is killed with messages in flight.
    let mut in_flight = Vec::new();
    for round in 0..6 {
        for (i, phone) in phones.iter().enumerate() {
            let fields = next(phone);
            let order: [&crate::common::process::RosterProcess; 2] =
                if round % 2 == 0 { [&a, &b] } else { [&b, &a] };
            assert!(deliver(&order, &fields).await.is_some());
            acknowledged[i] += 1;
        }
    }
    for phone in phones {
        let fields = next(phone);
        let request = signed(&reqwest::Client::new(), &a, &fields);
        in_flight.push((fields, tokio::spawn(request.send())));
    }
    a.crash();
    // Whatever A did with them, Twilio delivers them again: to B.
    for (i, (fields, _)) in in_flight.into_iter().enumerate() {
        assert!(deliver(&[&b], &fields).await.is_some(), "B takes them");
        acknowledged[i] += 1;
    }

    // Redis is killed too, with messages coming: 503 until it is back.
    let fields = next(MEMBER);
    redis.kill();
    let refused = b.post_signed(&fields).await;
    assert_eq!(refused.status(), 503);
    redis.restart();
    assert!(deliver(&[&b], &fields).await.is_some(), "served again");
    acknowledged[0] += 1;

    // Every acknowledged exchange is there, each once.
    for (i, phone) in phones.iter().enumerate() {
        let session = b.admin_json(&format!("/admin/sessions/{phone}")).await;
        assert_eq!(
            session["messageCount"].as_u64(),
            Some(acknowledged[i]),
            "{phone}: {session}"
        );
    }
    b.terminate();
}

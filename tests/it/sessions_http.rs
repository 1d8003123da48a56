//! Sessions through the webhook and the admin API, over real HTTP; and a
//! real `kill -9` of the binary.

use std::collections::HashSet;

use crate::common::process::{RosterProcess, roster_command};
use crate::common::*;
use serde_json::Value;

async fn session_json(app: &TestApp, phone: &str) -> Value {
    let response = app.admin_get(&format!("/admin/sessions/{phone}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn each_exchange_is_recorded_in_the_session() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "Find doctors in Bangalore").await;
    app.send(MEMBER, "thanks").await;
    let session = session_json(&app, MEMBER).await;
    assert_eq!(session["userId"], "T007");
    assert_eq!(session["phoneNumber"], MEMBER);
    assert_eq!(session["memberName"], "Sanjay Gupta");
    assert_eq!(session["role"], "admin");
    assert_eq!(session["messageCount"], 2);
    assert_eq!(session["searchCount"], 1);
    let history = session["conversationHistory"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["query"], "Find doctors in Bangalore");
    assert_eq!(history[0]["intent"], "search");
    assert_eq!(history[0]["entities"]["city"], "Bengaluru");
    assert_eq!(history[0]["resultCount"], 3);
    assert_eq!(history[0]["resultIds"].as_array().unwrap().len(), 3);
    assert!(history[0]["timestamp"].as_u64().unwrap() > 0);
    assert_eq!(history[1]["intent"], "thanks");
    assert!(session["createdAt"].as_u64().unwrap() <= session["lastActivity"].as_u64().unwrap());
    assert_eq!(session["stats"]["ttlRemainingSecs"], 1800);
    assert_eq!(session["stats"]["historyLength"], 2);
    app.stop().await;
}

#[tokio::test]
async fn strangers_get_no_session() {
    let app = spawn_admin_app().await;
    app.send(STRANGER, "hi").await;
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{STRANGER}"))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn fifty_simultaneous_messages_from_one_phone_lose_nothing() {
    let app = std::sync::Arc::new(spawn_admin_app().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _) = app.send_text(MEMBER, &format!("hello {i}")).await;
            assert_eq!(status, 200);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let session = session_json(&app, MEMBER).await;
    assert_eq!(session["messageCount"], 50);
    let queries: Vec<&str> = session["conversationHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["query"].as_str().unwrap())
        .collect();
    assert_eq!(queries.len(), 10);
    let unique: HashSet<&str> = queries.iter().copied().collect();
    assert_eq!(unique.len(), 10, "each exactly once: {queries:?}");
    let app = std::sync::Arc::try_unwrap(app)
        .ok()
        .expect("all tasks done");
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_message_gets_the_same_reply_and_counts_once() {
    let app = spawn_admin_app().await;
    let fields = whatsapp_form(
        MEMBER,
        "Find doctors in Bangalore",
        "SMdup0000000000000000000000000001",
    );
    let first = app.post_fields(&fields).await.text().await.unwrap();
    let second = app.post_fields(&fields).await.text().await.unwrap();
    assert_eq!(first, second);
    assert!(first.contains("Asha Rao"));
    let session = session_json(&app, MEMBER).await;
    assert_eq!(session["messageCount"], 1);
    assert_eq!(session["searchCount"], 1);
    assert_eq!(session["conversationHistory"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn sessions_expire_with_the_injected_clock() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "hi").await;
    app.clock.advance(std::time::Duration::from_secs(1799));
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{MEMBER}"))
            .await
            .status(),
        200
    );
    app.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{MEMBER}"))
            .await
            .status(),
        404
    );
    app.send(MEMBER, "hi again").await;
    let session = session_json(&app, MEMBER).await;
    assert_eq!(session["messageCount"], 1, "a new session");
    app.stop().await;
}

#[tokio::test]
async fn admin_api_requires_the_token() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "hi").await;
    let path = app.url(&format!("/admin/sessions/{MEMBER}"));
    assert_eq!(app.client.get(&path).send().await.unwrap().status(), 401);
    let wrong = app
        .client
        .get(&path)
        // The right token but for its last character.
        .bearer_auth(format!("{}X", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let short = app
        .client
        .get(&path)
        // A prefix of the right token.
        .bearer_auth(&ADMIN_TOKEN[..5])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 401);
    let basic = app
        .client
        .get(&path)
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let delete = app.client.delete(&path).send().await.unwrap();
    assert_eq!(delete.status(), 401);
    assert_eq!(
        app.client
            .get(app.url("/admin/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/admin/stats"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn admin_api_shows_lists_and_deletes_sessions() {
    let app = spawn_admin_app().await;
    for phone in [MEMBER, ASHA, "+919845000002", "+919845000003"] {
        app.send(phone, "hi").await;
    }
    // Any writing of the number works in the path.
    let session = session_json(&app, "0091-98450-00001").await;
    assert_eq!(session["memberName"], "Asha Rao");
    let bad = app.admin_get("/admin/sessions/not-a-phone").await;
    assert_eq!(bad.status(), 400);

    let page = app.admin_json("/admin/sessions?limit=3").await;
    let first = listed_phones(&page);
    assert_eq!(first.len(), 3);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = app
        .admin_json(&format!(
            "/admin/sessions?limit=3&cursor={}",
            cursor.replace('+', "%2B")
        ))
        .await;
    let second = listed_phones(&rest);
    assert_eq!(second.len(), 1);
    assert!(rest["nextCursor"].is_null());
    let all: HashSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), 4);

    let stats: Value = app.admin_get("/admin/stats").await.json().await.unwrap();
    assert_eq!(stats["sessions"]["storedSessions"], 4);
    assert!(stats["sessions"]["cacheHitRate"].is_number());

    let path = app.url(&format!("/admin/sessions/{ASHA}"));
    let deleted = app
        .client
        .delete(&path)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.admin_get(&format!("/admin/sessions/{ASHA}"))
            .await
            .status(),
        404
    );
    let again = app
        .client
        .delete(&path)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let stats: Value = app.admin_get("/admin/stats").await.json().await.unwrap();
    assert_eq!(stats["sessions"]["storedSessions"], 3);
    app.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_graceful_restart() {
    let app = spawn_admin_app().await;
    app.send(MEMBER, "Find doctors in Bangalore").await;
    let before = session_json(&app, MEMBER).await;
    let dir = app.stop().await;
    let mut config = test_config(dir.path());
    config.admin.token = ADMIN_TOKEN.to_owned();
    let app = spawn_app_in(dir, config, false).await;
    let after = session_json(&app, MEMBER).await;
    assert_eq!(before["conversationHistory"], after["conversationHistory"]);
    assert_eq!(after["messageCount"], 1);
    app.stop().await;
}

/// Strict mode: every exchange acknowledged with a 200 survives `kill -9`.
#[tokio::test]
async fn acknowledged_exchanges_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut command = roster_command(dir.path());
        command
            .arg("serve")
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("ROSTER_ADMIN__TOKEN", ADMIN_TOKEN)
            .env("ROSTER_STORAGE__DURABILITY", "strict")
            .env("ROSTER_SESSION__MAX_HISTORY", "100")
            // A long periodic flush: only the strict group commit can save us.
            .env("ROSTER_STORAGE__FLUSH_EVERY", "1h");
        RosterProcess::start(command)
    };
    let server = start();
    let sent = 40;
    for i in 0..sent {
        let fields = whatsapp_form(MEMBER, &format!("message {i}"), &format!("SMcrash{i:026}"));
        assert_eq!(server.post_signed(&fields).await.status(), 200);
    }
    server.crash();

    let server = start();
    let session = server
        .admin_json(&format!("/admin/sessions/{MEMBER}"))
        .await;
    assert_eq!(session["messageCount"], sent);
    let queries: Vec<&str> = session["conversationHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["query"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..sent).map(|i| format!("message {i}")).collect();
    assert_eq!(queries, expected);
    // The redelivery of an acknowledged message is still recognised.
    let fields = whatsapp_form(MEMBER, "message 0", &format!("SMcrash{:026}", 0));
    let response = server.post_signed(&fields).await;
    assert_eq!(response.status(), 200);
    let messages_after = server
        .admin_json(&format!("/admin/sessions/{MEMBER}"))
        .await;
    assert_eq!(
        messages_after["messageCount"], sent,
        "the redelivery counted nothing"
    );
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

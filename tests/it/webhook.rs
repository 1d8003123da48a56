//! The webhook over real HTTP: signatures, members, strangers, bad input.

use crate::common::*;

#[tokio::test]
async fn member_search_lists_matching_members_in_twiml() {
    let app = spawn_app().await;
    let response = app.send(MEMBER, "Find doctors in Bangalore").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml"),
        "TwiML is XML"
    );
    let body = response.text().await.unwrap();
    let text = messages(&body).join("\n");
    // Active Bengaluru doctors in the fixture: Asha, Vikram, Lata (Ravi is inactive).
    assert!(text.starts_with("Found 3 doctors in Bengaluru"), "{text}");
    for name in ["*Asha Rao*", "*Vikram Shetty*", "*Lata Iyer*"] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    for absent in ["Meera Nair", "Ravi Kumar", "Karan Mehta", "Sanjay Gupta"] {
        assert!(
            !text.contains(absent),
            "{absent} must not be listed: {text}"
        );
    }
    assert!(text.contains("1. *"), "numbered list: {text}");
    app.stop().await;
}

#[tokio::test]
async fn no_results_restates_the_search() {
    let app = spawn_app().await;
    let (status, body) = app.send_text(MEMBER, "lawyers in Chennai").await;
    assert_eq!(status, 200);
    let text = messages(&body).join("\n");
    assert!(text.contains("lawyers in Chennai"), "{text}");
    assert!(!text.contains('*'), "no members listed: {text}");
    app.stop().await;
}

#[tokio::test]
async fn greeting_says_what_one_can_ask() {
    let app = spawn_app().await;
    let (status, body) = app.send_text(MEMBER, "hi").await;
    assert_eq!(status, 200);
    let text = messages(&body).join("\n");
    assert!(text.contains("Sanjay"), "greets by first name: {text}");
    assert!(text.contains("Find doctors in Bangalore"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn bad_signatures_are_forbidden() {
    let app = spawn_app().await;
    let fields = whatsapp_form(MEMBER, "Find doctors in Bangalore", &app.new_sid());
    let body = encode_form(&fields).into_bytes();

    let missing = app.post_raw(body.clone(), None).await;
    assert_eq!(missing.status(), 403);

    let garbage = app
        .post_raw(body.clone(), Some("bm90IGEgc2lnbmF0dXJl"))
        .await;
    assert_eq!(garbage.status(), 403);

    let other_url = app.sign("https://elsewhere.example.org/whatsapp/webhook", &fields);
    assert_eq!(
        app.post_raw(body.clone(), Some(&other_url)).await.status(),
        403
    );

    let good = app.sign(&app.webhook_url(), &fields);
    let mut tampered = fields.clone();
    tampered.iter_mut().find(|(k, _)| k == "Body").unwrap().1 = "Find lawyers".to_owned();
    let tampered_body = encode_form(&tampered).into_bytes();
    let response = app.post_raw(tampered_body, Some(&good)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "invalid Twilio signature");

    let other_token =
        roster::twilio::SignatureVerifier::new("wrong-token").sign(&app.webhook_url(), &fields);
    assert_eq!(
        app.post_raw(body.clone(), Some(&other_token))
            .await
            .status(),
        403
    );

    assert_eq!(app.post_raw(body, Some(&good)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_signed_too() {
    let app = spawn_app().await;
    let mut fields = whatsapp_form(MEMBER, "hi", &app.new_sid());
    fields.push(("SomethingTwilioAddedLater".to_owned(), "x".to_owned()));
    fields.push(("Repeated".to_owned(), "b".to_owned()));
    fields.push(("Repeated".to_owned(), "a".to_owned()));
    assert_eq!(app.post_fields(&fields).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn public_url_is_what_gets_verified() {
    let app =
        spawn_app_with(|c| c.twilio.public_url = "https://roster.example.org/".to_owned()).await;
    let fields = whatsapp_form(MEMBER, "hi", &app.new_sid());
    let body = encode_form(&fields).into_bytes();
    let public = app.sign("https://roster.example.org/whatsapp/webhook", &fields);
    assert_eq!(
        app.post_raw(body.clone(), Some(&public)).await.status(),
        200
    );
    let with_port = app.sign("https://roster.example.org:443/whatsapp/webhook", &fields);
    assert_eq!(
        app.post_raw(body.clone(), Some(&with_port)).await.status(),
        200
    );
    let local = app.sign(&app.webhook_url(), &fields);
    assert_eq!(app.post_raw(body, Some(&local)).await.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_proto_and_host_rebuild_the_url() {
    let app = spawn_app().await;
    let fields = whatsapp_form(MEMBER, "hi", &app.new_sid());
    let signature = app.sign("https://bot.example.com/whatsapp/webhook?x=1", &fields);
    let response = app
        .client
        .post(app.url("/whatsapp/webhook?x=1"))
        .header("host", "bot.example.com")
        .header("x-forwarded-proto", "https")
        .header("x-twilio-signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn dev_mode_skips_verification() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.twilio.auth_token.clear();
    let app = spawn_app_in(dir, config, true).await;
    let fields = whatsapp_form(MEMBER, "doctors in Chennai", &app.new_sid());
    let response = app.post_raw(encode_form(&fields).into_bytes(), None).await;
    assert_eq!(response.status(), 200);
    assert!(messages(&response.text().await.unwrap())[0].contains("Meera Nair"));
    app.stop().await;
}

#[tokio::test]
async fn stranger_gets_one_refusal_per_hour_then_silence() {
    let app = spawn_app().await;
    let (status, first) = app.send_text(STRANGER, "Find doctors in Bangalore").await;
    assert_eq!(status, 200);
    let refusal = messages(&first).join("");
    assert!(
        refusal.contains("isn't registered with Test Network"),
        "{refusal}"
    );
    assert!(!refusal.contains("Asha"), "no member data for strangers");

    let (status, second) = app.send_text(STRANGER, "hello?").await;
    assert_eq!(status, 200);
    assert!(second.ends_with("<Response/>"), "silence: {second}");

    app.clock.advance(std::time::Duration::from_secs(59 * 60));
    let (_, still_silent) = app.send_text(STRANGER, "hello?").await;
    assert!(still_silent.ends_with("<Response/>"));

    app.clock.advance(std::time::Duration::from_secs(61));
    let (_, again) = app.send_text(STRANGER, "hello?").await;
    assert!(
        messages(&again).join("").contains("isn't registered"),
        "{again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn inactive_member_is_refused() {
    let app = spawn_app().await;
    let (status, body) = app.send_text(INACTIVE, "Find doctors in Bangalore").await;
    assert_eq!(status, 200);
    let text = messages(&body).join("");
    assert!(text.contains("isn't registered"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_400_with_a_reason() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (
            whatsapp_form(MEMBER, "hi", "SM1")
                .into_iter()
                .filter(|(k, _)| k != "From")
                .collect(),
            "no `From`",
        ),
        (
            whatsapp_form(MEMBER, "hi", "SM2")
                .into_iter()
                .map(|(k, v)| {
                    if k == "From" {
                        (k, "whatsapp:hello".to_owned())
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            "not a WhatsApp phone number",
        ),
        (
            whatsapp_form(MEMBER, "hi", "SM3")
                .into_iter()
                .map(|(k, v)| {
                    if k == "From" {
                        (k, "whatsapp:+12".to_owned())
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            "not a valid phone number",
        ),
    ];
    for (fields, reason) in cases {
        let response = app.post_fields(&fields).await;
        assert_eq!(response.status(), 400);
        let text = response.text().await.unwrap();
        assert!(text.contains(reason), "{text:?} should say {reason:?}");
    }
    // Invalid UTF-8 after percent-decoding: signed over the lossy text cannot match, so check unsigned-first order.
    let response = app
        .post_raw(
            b"From=whatsapp%3A%2B919845000007&Body=%FF%FE".to_vec(),
            Some("x"),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("UTF-8"));
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let app = spawn_app_with(|c| c.server.max_body_bytes = 4096).await;
    let fields = whatsapp_form(MEMBER, &"x".repeat(5000), &app.new_sid());
    let response = app.post_fields(&fields).await;
    assert_eq!(response.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn slow_requests_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        spawn_app_with(|c| c.server.request_timeout = std::time::Duration::from_millis(200)).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // Announce a body and never finish sending it.
    stream
        .write_all(b"POST /whatsapp/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nFrom=")
        .await
        .unwrap();
    let mut response = vec![0; 1024];
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read(&mut response),
    )
    .await
    .expect("the server answers before the client gives up")
    .unwrap();
    let head = String::from_utf8_lossy(&response[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    app.stop().await;
}

#[tokio::test]
async fn member_data_is_escaped_in_twiml() {
    let app = spawn_app().await;
    let (status, body) = app.send_text(MEMBER, "orthopedics in Bengaluru").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("O&apos;Brien &lt;Bone&gt; &amp; &quot;Joint&quot; Clinic"),
        "{body}"
    );
    let text = messages(&body).join("");
    assert!(
        text.contains(r#"O'Brien <Bone> & "Joint" Clinic"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn long_replies_are_split_into_several_messages() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("long.csv");
    let mut rows = String::from("name,phone,profession,city,organization\n");
    for i in 0..8 {
        rows.push_str(&format!(
            "Member {i},+91 98450 1000{i},Doctor,Pune,{}\n",
            format!("Organisation {i} ").repeat(30)
        ));
    }
    std::fs::write(&csv, rows).unwrap();
    let mut config = test_config(dir.path());
    config.directory.members_csv = csv;
    let app = spawn_app_in(dir, config, false).await;
    let (status, body) = app.send_text("+919845010000", "doctors in Pune").await;
    assert_eq!(status, 200);
    let parts = messages(&body);
    assert!(parts.len() >= 2, "split: {}", parts.len());
    for part in &parts {
        assert!(part.encode_utf16().count() <= 1600);
        assert!(!part.is_empty());
    }
    // Split on line boundaries: every numbered line is whole in one message.
    for n in 1..=5 {
        let whole = parts
            .iter()
            .any(|p| p.lines().any(|l| l.starts_with(&format!("{n}. *Member"))));
        assert!(whole, "line {n} was cut");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health: serde_json::Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["members"], 7);
    assert_eq!(ready["storage"], "open");
    app.stop().await;
}

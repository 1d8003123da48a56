//! Messages that are not text, over the real webhook: photos and voice
//! notes, quick-reply buttons, shared locations.

use crate::common::*;

/// A WhatsApp message from `from` with `body` and these extra fields
/// (replacing any of the same name), signed and sent; its `<Message>`s.
async fn send_with(app: &TestApp, from: &str, body: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let mut fields = whatsapp_form(from, body, &app.new_sid());
    for (name, value) in extra {
        fields.retain(|(n, _)| n != name);
        fields.push(((*name).to_owned(), (*value).to_owned()));
    }
    let response = app.post_fields(&fields).await;
    assert_eq!(response.status(), 200);
    messages(&response.text().await.unwrap())
}

fn media(content_type: &str) -> [(&str, &str); 4] {
    [
        ("NumMedia", "1"),
        ("MessageType", "image"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        ),
        ("MediaContentType0", content_type),
    ]
}

#[tokio::test]
async fn a_photo_or_voice_note_gets_told_to_type_with_an_example() {
    let app = spawn_app().await;
    for (content_type, kind) in [
        ("image/jpeg", "photo"),
        ("audio/ogg", "voice note"),
        ("application/pdf", "document"),
    ] {
        let reply = send_with(&app, MEMBER, "", &media(content_type))
            .await
            .join("\n");
        assert!(reply.contains("I can only read text"), "{reply}");
        assert!(reply.contains(&format!("that {kind}")), "{reply}");
        assert!(reply.contains("“doctors in Bengaluru”"), "{reply}");
    }
    // A caption is text, and is read.
    let caption = send_with(
        &app,
        MEMBER,
        "Find doctors in Bangalore",
        &media("image/jpeg"),
    )
    .await
    .join("\n");
    assert!(
        caption.starts_with("Found 3 doctors in Bengaluru"),
        "{caption}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_media_message_from_a_stranger_is_still_refused() {
    let app = spawn_app().await;
    let reply = send_with(&app, STRANGER, "", &media("image/jpeg"))
        .await
        .join("\n");
    assert!(reply.contains("isn't registered"), "{reply}");
    app.stop().await;
}

#[tokio::test]
async fn buttons_are_read_as_their_text() {
    let app = spawn_app().await;
    let text = send_with(
        &app,
        MEMBER,
        "",
        &[
            ("ButtonText", "Find doctors in Bangalore"),
            ("ButtonPayload", "ignored-when-there-is-text"),
        ],
    )
    .await
    .join("\n");
    assert!(text.starts_with("Found 3 doctors in Bengaluru"), "{text}");
    let payload = send_with(&app, ASHA, "", &[("ButtonPayload", "lawyers in Mumbai")])
        .await
        .join("\n");
    assert!(payload.contains("Karan Mehta"), "{payload}");
    // A STOP button opts out like the word.
    let stop = send_with(&app, MEMBER, "", &[("ButtonText", "Stop")]).await;
    assert_eq!(
        stop,
        ["You won't get messages from Test Network any more. Send START to resume."]
    );
    app.stop().await;
}

fn place(address: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MessageType", "location".to_owned()),
        ("Latitude", "12.9352".to_owned()),
        ("Longitude", "77.6245".to_owned()),
        ("Address", address.to_owned()),
    ]
}

async fn share(app: &TestApp, from: &str, fields: &[(&str, String)]) -> String {
    let extra: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    send_with(app, from, "", &extra).await.join("\n")
}

#[tokio::test]
async fn a_shared_location_searches_its_area_or_city() {
    let app = spawn_admin_app().await;
    let area = share(
        &app,
        MEMBER,
        &place("80 Feet Road, Koramangala, Bengaluru, Karnataka 560034, India"),
    )
    .await;
    assert!(area.contains("*Asha Rao*"), "Koramangala: {area}");
    for elsewhere in ["Vikram Shetty", "Lata Iyer", "Meera Nair"] {
        assert!(!area.contains(elsewhere), "{elsewhere}: {area}");
    }

    let city = share(&app, MEMBER, &place("MG Road, Bengaluru, Karnataka")).await;
    for name in ["*Asha Rao*", "*Vikram Shetty*", "*Lata Iyer*"] {
        assert!(city.contains(name), "{name} missing from {city}");
    }
    assert!(!city.contains("Meera Nair"), "{city}");

    // Recorded in the session as a search, so follow-ups work.
    let session = app.admin_json(&format!("/admin/sessions/{MEMBER}")).await;
    let last = session["conversationHistory"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["intent"], "search", "{last}");
    assert_eq!(last["entities"]["city"], "Bengaluru", "{last}");
    assert_eq!(session["searchCount"], 2);
    let first = last["resultIds"][0].as_str().unwrap().to_owned();
    let details = send_with(&app, MEMBER, "1", &[]).await.join("\n");
    let first_name = city
        .lines()
        .find(|l| l.starts_with("1. *"))
        .and_then(|l| l.split('*').nth(1))
        .unwrap_or_else(|| panic!("a first result in {city} ({first})"));
    assert!(details.contains(first_name), "{first_name}: {details}");

    // A label alone names the place too.
    let labelled = share(
        &app,
        ASHA,
        &[
            ("Latitude", "13.0".to_owned()),
            ("Longitude", "80.2".to_owned()),
            ("Label", "Adyar".to_owned()),
        ],
    )
    .await;
    assert!(labelled.contains("*Meera Nair*"), "{labelled}");
    app.stop().await;
}

#[tokio::test]
async fn a_location_the_directory_does_not_have_asks_for_the_city() {
    let app = spawn_app().await;
    let ask = "Which city should I search in? For example “doctors in Bengaluru”.";
    let abroad = share(
        &app,
        MEMBER,
        &place("Times Square, New York, NY 10036, USA"),
    )
    .await;
    assert!(abroad.ends_with(ask), "{abroad}");
    assert!(!abroad.contains('*'), "nobody listed: {abroad}");
    let bare = share(
        &app,
        MEMBER,
        &[
            ("Latitude", "12.9".to_owned()),
            ("Longitude", "77.6".to_owned()),
        ],
    )
    .await;
    assert!(bare.ends_with(ask), "{bare}");
    app.stop().await;
}

#[tokio::test]
async fn a_location_search_counts_against_the_searches_limit() {
    let app = spawn_app_with(|c| c.limits.searches_per_hour = 1).await;
    let city = share(&app, MEMBER, &place("MG Road, Bengaluru")).await;
    assert!(city.contains("*Asha Rao*"), "{city}");
    let limited = send_with(&app, MEMBER, "lawyers in Mumbai", &[])
        .await
        .join("\n");
    assert!(
        limited.contains("limit of 1 searches per hour"),
        "{limited}"
    );
    // Asking for the city is no search.
    let other = spawn_app_with(|c| c.limits.searches_per_hour = 1).await;
    share(&other, MEMBER, &place("Times Square, New York")).await;
    let answer = send_with(&other, MEMBER, "lawyers in Mumbai", &[])
        .await
        .join("\n");
    assert!(answer.contains("Karan Mehta"), "{answer}");
    other.stop().await;
    app.stop().await;
}

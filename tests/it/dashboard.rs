//! The organisers' dashboard over plain HTTP: sign-in and its cookie, the
//! redirect without one, CSRF and Origin checks, the limit on failed
//! sign-ins, the figures the webhook counts (and their surviving a
//! restart), the directory upload's checks, and sessions.

use std::time::Duration;

use crate::common::dashboard::*;
use crate::common::*;

const PAGES: [&str; 5] = [
    "/dashboard",
    "/dashboard/searches",
    "/dashboard/directory",
    "/dashboard/sessions",
    "/dashboard/nowhere",
];

#[tokio::test]
async fn the_sign_in_cookie_is_http_only_strict_and_lasts_12_hours() {
    let app = spawn_dashboard_app().await;
    let signed = app.sign_in().await;
    let cookie = &signed.set_cookie;
    assert!(cookie.starts_with("roster_dashboard="), "{cookie}");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=43200",
        "Path=/dashboard",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    app.stop().await;

    let app = spawn_dashboard_app_with(|c| {
        c.twilio.public_url = "https://roster.example.org".to_owned();
    })
    .await;
    let response = app.dashboard_login(ADMIN_TOKEN).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "https public URL: {cookie}");
    app.stop().await;
}

#[tokio::test]
async fn without_a_cookie_every_page_and_post_redirects_to_the_login_page() {
    let app = spawn_dashboard_app().await;
    let client = plain_client();
    for path in PAGES {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/dashboard/login", "{path}");
    }
    let forged = client
        .get(app.url("/dashboard"))
        .header("cookie", "roster_dashboard=not-a-session")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303);
    let post = client
        .post(app.url("/dashboard/directory/reload"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 303);
    let login = client
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains(r#"name="token""#));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_signing_out_ends_the_session() {
    let app = spawn_dashboard_app().await;
    let wrong = app.dashboard_login("not-the-token").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("not the admin token"));

    let signed = app.sign_in().await;
    let out = app
        .post_page(
            &signed,
            "/dashboard/logout",
            &[("csrf", &signed.csrf)],
            None,
        )
        .await;
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = app.page(&signed, "/dashboard").await;
    assert_eq!(status, 303, "the old cookie no longer signs in");
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_until_the_window_passes() {
    let app = spawn_dashboard_app().await;
    for _ in 0..5 {
        assert_eq!(app.dashboard_login("wrong").await.status(), 401);
    }
    let limited = app.dashboard_login(ADMIN_TOKEN).await;
    assert_eq!(limited.status(), 429, "even the right token waits");
    assert!(limited.text().await.unwrap().contains("Too many"));
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(app.dashboard_login(ADMIN_TOKEN).await.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_from_another_origin_is_refused() {
    let app = spawn_dashboard_app().await;
    let signed = app.sign_in().await;
    let path = "/dashboard/directory/reload";
    let missing = app.post_page(&signed, path, &[], None).await;
    assert_eq!(missing.status(), 403);
    let wrong = app
        .post_page(&signed, path, &[("csrf", "0000")], None)
        .await;
    assert_eq!(wrong.status(), 403);
    let foreign = app
        .post_page(
            &signed,
            path,
            &[("csrf", &signed.csrf)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(foreign.status(), 403);
    let null = app
        .post_page(&signed, path, &[("csrf", &signed.csrf)], Some("null"))
        .await;
    assert_eq!(null.status(), 403);
    let own = app.url("");
    let ok = app
        .post_page(&signed, path, &[("csrf", &signed.csrf)], Some(&own))
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(
        ok.headers()["location"],
        "/dashboard/directory?notice=reloaded"
    );
    let login = plain_client()
        .post(app.url("/dashboard/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403, "no sign-in from another site");
    app.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_the_dashboard_says_it_is_off() {
    let app = spawn_app().await;
    let response = plain_client()
        .get(app.url("/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The dashboard is off")
    );
    let login = app.dashboard_login("anything").await;
    assert_eq!(login.status(), 404);
    app.stop().await;
}

/// Sends the messages the figures tests count: 4 answered from members, a
/// stranger, and a bad signature.
async fn send_known_messages(app: &TestApp) {
    for (from, body) in [
        (MEMBER, "doctors in Bengaluru"),
        (ASHA, "lawyers in Chennai"),
        (MEMBER, "astronauts"),
        (MEMBER, "qwertyuiop 9845000001 me@example.org"),
    ] {
        let (status, _) = app.send_text(from, body).await;
        assert_eq!(status, 200);
    }
    assert_eq!(app.send_text(STRANGER, "hello").await.0, 200);
    let fields = whatsapp_form(MEMBER, "forged", &app.new_sid());
    let forged = app
        .post_raw(encode_form(&fields).into_bytes(), Some("bad"))
        .await;
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn the_overview_counts_what_the_webhook_saw_and_survives_a_restart() {
    let app = spawn_dashboard_app().await;
    send_known_messages(&app).await;
    let signed = app.sign_in().await;
    let (status, page) = app.page(&signed, "/dashboard").await;
    assert_eq!(status, 200);
    assert_eq!(
        text_of(&page, "messages-24h").as_deref(),
        Some("5"),
        "{page}"
    );
    assert_eq!(text_of(&page, "outcome-answered").as_deref(), Some("4"));
    assert_eq!(
        text_of(&page, "outcome-refused-stranger").as_deref(),
        Some("1")
    );
    assert_eq!(
        text_of(&page, "outcome-bad-signature").as_deref(),
        Some("1")
    );
    assert_eq!(text_of(&page, "members").as_deref(), Some("6"));
    assert!(page.contains("<svg"), "the charts are inline SVG");
    assert_ne!(text_of(&page, "p50").as_deref(), Some("–"));

    let (_, searches) = app.page(&signed, "/dashboard/searches").await;
    assert!(searches.contains("Doctor · Bengaluru"), "{searches}");
    let no_results = &searches[searches.find(r#"id="no-results""#).expect("a list")..];
    assert!(no_results.contains("Lawyer · Chennai"), "{no_results}");
    assert!(no_results.contains("no such member"));
    let unknown = &searches[searches.find(r#"id="not-understood""#).expect(&searches)..];
    assert!(
        unknown.contains("astronauts,profession:"),
        "a synonym line to add: {unknown}"
    );
    assert!(!searches.contains("9845000001") && !searches.contains("me@example.org"));

    // The figures are written at shutdown and read back at start.
    let dir = app.stop().await;
    let config = dashboard_config(dir.path(), |_| {});
    let app = spawn_app_in(dir, config, false).await;
    let signed = app.sign_in().await;
    let (_, page) = app.page(&signed, "/dashboard").await;
    assert_eq!(
        text_of(&page, "messages-24h").as_deref(),
        Some("5"),
        "after a restart"
    );
    assert_eq!(text_of(&page, "outcome-answered").as_deref(), Some("4"));
    let (_, searches) = app.page(&signed, "/dashboard/searches").await;
    assert!(searches.contains("Lawyer · Chennai"));

    // Forgetting the texts keeps their count.
    let forgot = app
        .post_page(
            &signed,
            "/dashboard/searches/forget",
            &[("csrf", &signed.csrf)],
            None,
        )
        .await;
    assert_eq!(forgot.status(), 303);
    let (_, searches) = app.page(&signed, "/dashboard/searches").await;
    assert!(!searches.contains("astronauts"), "{searches}");
    assert!(searches.contains("(text not kept)"));
    let dir = app.stop().await;

    // No phone number anywhere in what was stored.
    let db = roster::store::open(&dashboard_config(dir.path(), |_| {}).storage).unwrap();
    let tree = db.open_tree("aggregates").unwrap();
    let mut stored = Vec::new();
    for item in tree.iter() {
        stored.extend_from_slice(&item.unwrap().1);
    }
    assert!(!stored.is_empty());
    let text = String::from_utf8_lossy(&stored);
    for phone in ["9845000001", "9845000007", "9900000099", "98450"] {
        assert!(!text.contains(phone), "{phone} in the figures");
    }
}

#[tokio::test]
async fn texts_are_not_kept_when_the_setting_is_off_and_old_hours_go() {
    let app = spawn_dashboard_app_with(|c| c.dashboard.keep_unanswered_texts = false).await;
    app.send_text(MEMBER, "astronauts").await;
    let signed = app.sign_in().await;
    let (_, searches) = app.page(&signed, "/dashboard/searches").await;
    assert!(!searches.contains("astronauts"));
    assert!(searches.contains("(text not kept)"));
    // Past the retention, the hour is dropped at the next write.
    let dir = app.stop().await;
    let clock = roster::clock::ManualClock::starting_now();
    clock.advance(Duration::from_secs(91 * 24 * 3600));
    let config = dashboard_config(dir.path(), |c| c.dashboard.keep_unanswered_texts = false);
    let app = spawn_app_at(dir, config, false, clock).await;
    let signed = app.sign_in().await;
    let (_, page) = app.page(&signed, "/dashboard").await;
    assert_eq!(text_of(&page, "messages-30d").as_deref(), Some("0"));
    let (_, searches) = app.page(&signed, "/dashboard/searches").await;
    assert!(
        !searches.contains("(text not kept)"),
        "dropped past retention"
    );
    app.stop().await;
}

const HEADER: &str = "member_id,name,phone,email,profession,specialty,designation,organization,city,area,skills,services,graduation_year,degree,branch,bio,role,status,share_contact,languages\n";

fn uploads_left(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".roster-upload-"))
        .collect()
}

#[tokio::test]
async fn an_upload_is_checked_in_full_and_replaces_the_directory_only_when_confirmed() {
    let app = spawn_dashboard_app().await;
    let signed = app.sign_in().await;
    let before = std::fs::read(members_file(&app)).unwrap();

    // Every row bad: shown, refused, nothing replaced or left behind.
    let bad = format!(
        "{HEADER}B1,No Phone,,x@example.org,Doctor,,,,Pune,,,,,,,,member,active,true,\nB2,Bad Phone,12,y@example.org,Doctor,,,,Pune,,,,,,,,member,active,true,\n"
    );
    let response = app.upload(&signed, "new.csv", bad.into_bytes()).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"id="upload-rejections""#), "{page}");
    assert!(page.contains("line 2") && page.contains("line 3"), "{page}");
    assert!(!page.contains(r#"id="confirm-upload""#));
    assert_eq!(std::fs::read(members_file(&app)).unwrap(), before);
    assert!(uploads_left(&app).is_empty());

    // A file that is not a directory at all.
    let response = app
        .upload(&signed, "new.csv", b"just,some\nwords,here\n".to_vec())
        .await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("column"));
    // A workbook for a CSV directory.
    let xlsx = std::fs::read(fixture("sheet-members.xlsx")).unwrap();
    let response = app.upload(&signed, "members.xlsx", xlsx).await;
    assert_eq!(response.status(), 422);
    // Too large.
    let response = app
        .upload(&signed, "big.csv", vec![b'a'; 11 * 1024 * 1024])
        .await;
    assert_eq!(response.status(), 413);
    // Without the CSRF token.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(before.clone()).file_name("members.csv"),
    );
    let response = plain_client()
        .post(app.url("/dashboard/directory/upload"))
        .header("cookie", &signed.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // A good file with one bad row: checked, waiting, not yet in use.
    let good = format!(
        "{HEADER}N1,Nina Das,+919845000101,nina@example.org,Architect,,,,Pune,,,,,,,,member,active,true,\nN2,Omar Ali,+919845000102,omar@example.org,Plumber,,,,Pune,,,,,,,,member,active,true,\nN3,Bad,12,z@example.org,Doctor,,,,Pune,,,,,,,,member,active,true,\n"
    );
    let response = app
        .upload(&signed, "good.csv", good.clone().into_bytes())
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("2 members read"), "{page}");
    assert!(page.contains("line 4"));
    let token = {
        let at = page
            .find(r#"name="upload" value=""#)
            .expect("a confirm form");
        let rest = &page[at + r#"name="upload" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    assert_eq!(
        std::fs::read(members_file(&app)).unwrap(),
        before,
        "not before the confirm"
    );
    let (_, overview) = app.page(&signed, "/dashboard").await;
    assert_eq!(text_of(&overview, "members").as_deref(), Some("6"));

    let refused = app
        .post_page(
            &signed,
            "/dashboard/directory/confirm",
            &[("upload", &token)],
            None,
        )
        .await;
    assert_eq!(
        refused.status(),
        403,
        "the confirm wants the CSRF token too"
    );
    let confirmed = app
        .post_page(
            &signed,
            "/dashboard/directory/confirm",
            &[("csrf", &signed.csrf), ("upload", &token)],
            None,
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(std::fs::read_to_string(members_file(&app)).unwrap(), good);
    assert!(app.dir.path().join("members.csv.previous").exists());
    let (_, overview) = app.page(&signed, "/dashboard").await;
    assert_eq!(text_of(&overview, "members").as_deref(), Some("2"));
    let (_, directory) = app.page(&signed, "/dashboard/directory").await;
    assert!(
        directory.contains("line 4"),
        "the rejected row of the load in use"
    );
    assert!(uploads_left(&app).is_empty());

    let again = app
        .post_page(
            &signed,
            "/dashboard/directory/confirm",
            &[("csrf", &signed.csrf), ("upload", &token)],
            None,
        )
        .await;
    assert_eq!(again.status(), 422, "a token confirms once");
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_masked_shown_and_deleted() {
    let app = spawn_dashboard_app().await;
    app.send_text(MEMBER, "doctors in Bengaluru").await;
    app.send_text(ASHA, "hi").await;
    let signed = app.sign_in().await;
    let (_, list) = app.page(&signed, "/dashboard/sessions").await;
    assert_eq!(text_of(&list, "session-total").as_deref(), Some("2"));
    assert!(
        !list.contains("9845000007") && !list.contains("98450 00007"),
        "{list}"
    );
    let link = {
        let at = list
            .find(r#"href="/dashboard/sessions/"#)
            .expect("a session link");
        let rest = &list[at + r#"href=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    assert!(!link.contains("9845"));
    let (status, session) = app.page(&signed, &link).await;
    assert_eq!(status, 200);
    assert!(session.contains(r#"id="history""#), "{session}");

    let lookup = app
        .post_page(
            &signed,
            "/dashboard/sessions/lookup",
            &[("csrf", &signed.csrf), ("phone", MEMBER)],
            None,
        )
        .await;
    let lookup = lookup.text().await.unwrap();
    assert!(lookup.contains("49 of 50 left"), "{lookup}");

    let deleted = app
        .post_page(
            &signed,
            &format!("{link}/delete"),
            &[("csrf", &signed.csrf)],
            None,
        )
        .await;
    assert_eq!(deleted.status(), 303);
    let (_, list) = app.page(&signed, "/dashboard/sessions").await;
    assert_eq!(text_of(&list, "session-total").as_deref(), Some("1"));
    let (status, _) = app.page(&signed, &link).await;
    assert_eq!(status, 404);
    app.stop().await;
}

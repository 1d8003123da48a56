//! The dashboard in a real browser: Debian's Chromium, driven over
//! WebDriver (chromedriver, through fantoccini), against the real router
//! after real signed webhook messages.
//!
//! It signs in (and fails with a wrong token), checks the overview's counts
//! against the messages sent, finds a search that found nobody, uploads a
//! bad directory (rejections shown, old directory kept) and then a good one
//! (member count changes), deletes a session, and checks that pages without
//! a cookie redirect to the login page and that a forged cross-site POST is
//! refused. Every page is saved as a screenshot under
//! `target/dashboard-screenshots/`.
//!
//! Without `chromium` and `chromedriver` installed it says so and passes;
//! `.ci/run` installs them, so it runs in CI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::dashboard::*;
use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};

fn installed(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A chromedriver this test started; killed (by its own handle) on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://{addr}"),
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1200,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("saved");
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
        .text()
        .await
        .expect("its text")
}

/// Clicks what `css` finds, a link or a submit button, and waits until the
/// next page has replaced this one (WebDriver's click does not wait for a
/// form's navigation).
async fn click(browser: &Client, css: &str) {
    let old_page = browser.find(Locator::Css("html")).await.expect("a page");
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
        .click()
        .await
        .expect("clicked");
    let deadline = Instant::now() + Duration::from_secs(15);
    while old_page.tag_name().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "no new page after clicking {css}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The new document is in place; let it finish loading.
    let ready = Instant::now() + Duration::from_secs(15);
    while browser
        .execute("return document.readyState", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(|s| s == "complete"))
        != Some(true)
    {
        assert!(Instant::now() < ready, "the page after {css} did not load");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn path_of(browser: &Client) -> String {
    browser
        .current_url()
        .await
        .expect("a URL")
        .path()
        .to_owned()
}

/// A page on another origin whose form POSTs to the dashboard, as a
/// forger's site would.
async fn forger(target: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let page = format!(
        r#"<!doctype html><html><body><form method="post" action="{target}/dashboard/directory/reload"><input type="hidden" name="csrf" value="guessed"><button id="go">Win a prize</button></form></body></html>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

const HEADER: &str = "member_id,name,phone,email,profession,specialty,designation,organization,city,area,skills,services,graduation_year,degree,branch,bio,role,status,share_contact,languages\n";

#[tokio::test]
async fn an_organiser_uses_the_dashboard_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (installed("chromium"), installed("chromedriver"))
    else {
        println!(
            "SKIPPED: the dashboard browser test needs Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver); .ci/run installs them"
        );
        return;
    };
    let app = spawn_dashboard_app().await;
    // Real signed webhook messages: 3 answered, 1 stranger.
    for (from, body) in [
        (MEMBER, "doctors in Bengaluru"),
        (ASHA, "lawyers in Chennai"),
        (MEMBER, "astronauts"),
        (STRANGER, "hello"),
    ] {
        assert_eq!(app.send_text(from, body).await.0, 200);
    }
    let files = tempfile::tempdir().unwrap();
    let driver = start_driver(&chromedriver);
    let browser = browser(&driver, &chromium, &files.path().join("profile")).await;
    let base = app.url("");

    // Without a cookie, every page leads to the login page.
    for page in ["/dashboard", "/dashboard/directory", "/dashboard/sessions"] {
        browser.goto(&format!("{base}{page}")).await.unwrap();
        assert_eq!(path_of(&browser).await, "/dashboard/login", "{page}");
    }
    shot(&browser, "login").await;

    // A wrong token, then the right one.
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    click(&browser, "#sign-in").await;
    assert!(
        text(&browser, "#login-error")
            .await
            .contains("not the admin token")
    );
    shot(&browser, "login-failed").await;
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    click(&browser, "#sign-in").await;
    assert_eq!(path_of(&browser).await, "/dashboard");

    // The overview counts what was sent.
    assert_eq!(text(&browser, "#messages-24h").await, "4");
    assert_eq!(text(&browser, "#outcome-answered").await, "3");
    assert_eq!(text(&browser, "#outcome-refused-stranger").await, "1");
    assert_eq!(text(&browser, "#members").await, "6");
    shot(&browser, "overview").await;
    browser.set_window_size(412, 900).await.unwrap();
    shot(&browser, "overview-phone").await;
    browser.set_window_size(1200, 1000).await.unwrap();

    // The search that found nobody is listed, with its fix.
    click(&browser, "nav a[href='/dashboard/searches']").await;
    let no_results = text(&browser, "#no-results").await;
    assert!(no_results.contains("Lawyer · Chennai"), "{no_results}");
    assert!(no_results.contains("no such member"));
    assert!(
        text(&browser, "#not-understood")
            .await
            .contains("astronauts")
    );
    shot(&browser, "searches").await;

    // A bad file: its rejections, and the old directory kept.
    click(&browser, "nav a[href='/dashboard/directory']").await;
    shot(&browser, "directory").await;
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{HEADER}B1,No Phone,,x@example.org,Doctor,,,,Pune,,,,,,,,member,active,true,\nB2,Bad Phone,12,y@example.org,Doctor,,,,Pune,,,,,,,,member,active,true,\n"),
    )
    .unwrap();
    let before = std::fs::read(members_file(&app)).unwrap();
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&bad.display().to_string())
        .await
        .unwrap();
    click(&browser, "#upload").await;
    let rejections = text(&browser, "#upload-rejections").await;
    assert!(
        rejections.contains("line 2") && rejections.contains("line 3"),
        "{rejections}"
    );
    assert!(
        text(&browser, "#upload-refused")
            .await
            .contains("cannot replace")
    );
    assert!(browser.find(Locator::Css("#confirm-upload")).await.is_err());
    assert_eq!(
        text(&browser, "#active").await,
        "6",
        "the old directory is kept"
    );
    assert_eq!(std::fs::read(members_file(&app)).unwrap(), before);
    shot(&browser, "directory-bad-upload").await;

    // A good file, confirmed: the member count changes.
    let good = files.path().join("good.csv");
    std::fs::write(
        &good,
        format!("{HEADER}N1,Nina Das,+919845000101,nina@example.org,Architect,,,,Pune,,,,,,,,member,active,true,\nN2,Omar Ali,+919845000102,omar@example.org,Plumber,,,,Pune,,,,,,,,member,active,false,\n"),
    )
    .unwrap();
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&good.display().to_string())
        .await
        .unwrap();
    click(&browser, "#upload").await;
    assert!(
        text(&browser, "#upload-members")
            .await
            .contains("2 members read")
    );
    shot(&browser, "directory-good-upload").await;
    click(&browser, "#confirm-upload").await;
    assert!(text(&browser, "#notice").await.contains("replaced"));
    assert_eq!(text(&browser, "#active").await, "2");
    assert_eq!(text(&browser, "#not-sharing").await, "1");
    click(&browser, "nav a[href='/dashboard']").await;
    assert_eq!(text(&browser, "#members").await, "2");

    // Sessions: one opened, then deleted.
    click(&browser, "nav a[href='/dashboard/sessions']").await;
    assert_eq!(text(&browser, "#session-total").await, "2");
    shot(&browser, "sessions").await;
    click(&browser, "#sessions tbody a").await;
    assert!(text(&browser, "#history").await.len() > 10);
    shot(&browser, "session").await;
    click(&browser, "#delete-session").await;
    assert!(text(&browser, "#notice").await.contains("deleted"));
    assert_eq!(text(&browser, "#session-total").await, "1");

    // A forged POST from another origin is refused, and nothing changes.
    let forger = forger(base.clone()).await;
    browser.goto(&format!("http://{forger}/")).await.unwrap();
    click(&browser, "#go").await;
    let refused = browser.source().await.unwrap();
    assert_eq!(path_of(&browser).await, "/dashboard/directory/reload");
    assert!(refused.contains("was refused"), "{refused}");
    shot(&browser, "forged-post-refused").await;

    // Signed out, the pages lead to the login page again.
    browser.goto(&format!("{base}/dashboard")).await.unwrap();
    click(&browser, "#logout").await;
    assert_eq!(path_of(&browser).await, "/dashboard/login");
    browser
        .goto(&format!("{base}/dashboard/searches"))
        .await
        .unwrap();
    assert_eq!(path_of(&browser).await, "/dashboard/login");

    browser.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

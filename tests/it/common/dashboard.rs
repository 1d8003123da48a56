//! Test support for the dashboard: an app with it on and its own copy of
//! the directory file, signing in, and reading pages.

use std::path::PathBuf;

use reqwest::header;

use super::{ADMIN_TOKEN, TestApp, fixture, spawn_app_in, test_config};

/// Starts an app with the dashboard on ([`ADMIN_TOKEN`]) and the fixture
/// directory copied into its temp dir (uploads may replace it).
pub async fn spawn_dashboard_app() -> TestApp {
    spawn_dashboard_app_with(|_| {}).await
}

pub async fn spawn_dashboard_app_with(tweak: impl FnOnce(&mut roster::config::Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dashboard_config(dir.path(), tweak);
    spawn_app_in(dir, config, false).await
}

/// The configuration of [`spawn_dashboard_app`] rooted in `dir`.
pub fn dashboard_config(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut roster::config::Config),
) -> roster::config::Config {
    let members = dir.join("members.csv");
    if !members.exists() {
        std::fs::copy(fixture("members.csv"), &members).expect("copy the directory");
    }
    let mut config = test_config(dir);
    config.admin.token = ADMIN_TOKEN.to_owned();
    config.directory.members_csv = members;
    tweak(&mut config);
    config
}

pub fn members_file(app: &TestApp) -> PathBuf {
    app.dir.path().join("members.csv")
}

/// A client that does not follow redirects and keeps no cookies.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A signed-in organiser: the cookie to send and the CSRF token of forms.
pub struct SignedIn {
    pub cookie: String,
    pub csrf: String,
    pub set_cookie: String,
}

/// The `value` of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

/// The text inside the element with `id`, up to its first tag.
pub fn text_of(html: &str, id: &str) -> Option<String> {
    let marker = format!(r#"id="{id}""#);
    let at = html.find(&marker)?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].trim().to_owned())
}

impl TestApp {
    pub async fn dashboard_login(&self, token: &str) -> reqwest::Response {
        plain_client()
            .post(self.url("/dashboard/login"))
            .form(&[("token", token)])
            .send()
            .await
            .expect("request")
    }

    pub async fn sign_in(&self) -> SignedIn {
        let response = self.dashboard_login(ADMIN_TOKEN).await;
        assert_eq!(response.status(), 303, "sign-in redirects");
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("a cookie")
            .to_str()
            .expect("text")
            .to_owned();
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        let page = plain_client()
            .get(self.url("/dashboard"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(page.status(), 200);
        let csrf = csrf_of(&page.text().await.expect("body"));
        SignedIn {
            cookie,
            csrf,
            set_cookie,
        }
    }

    /// `GET path` signed in: the status and the page.
    pub async fn page(&self, signed: &SignedIn, path: &str) -> (u16, String) {
        let response = plain_client()
            .get(self.url(path))
            .header(header::COOKIE, &signed.cookie)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// `POST path` signed in with `fields` (the CSRF token is not added).
    pub async fn post_page(
        &self,
        signed: &SignedIn,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut request = plain_client()
            .post(self.url(path))
            .header(header::COOKIE, &signed.cookie)
            .form(fields);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.send().await.expect("request")
    }

    /// Uploads `bytes` as `file_name` to the directory page, signed in.
    pub async fn upload(
        &self,
        signed: &SignedIn,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("csrf", signed.csrf.clone())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
            );
        plain_client()
            .post(self.url("/dashboard/directory/upload"))
            .header(header::COOKIE, &signed.cookie)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }
}

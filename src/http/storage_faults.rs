//! The storage-fault behaviour through the real router, with the store's
//! disk failing on demand (the store's `Disk` seam, `Fault` in unit tests
//! only): the logic the tmpfs tests (`tests/it/storage_faults.rs`, root only)
//! check on a really full disk.

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use std::path::Path;

    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::http::{App, Options};
    use crate::shutdown::ShutdownTrigger;
    use crate::store::health::FailureKind;
    use crate::twilio::SignatureVerifier;

    const TOKEN: &str = "unit-auth-token";
    const ADMIN: &str = "unit-admin-token";
    const MEMBER: &str = "+919845000007";
    const ASHA: &str = "+919845000001";
    const STRANGER: &str = "+919900000099";

    fn config(dir: &Path) -> Config {
        let mut config = Config::default();
        config.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.twilio.auth_token = TOKEN.to_owned();
        config.admin.token = ADMIN.to_owned();
        config.directory.members_csv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/members.csv");
        config.storage.data_dir = dir.join("state");
        config.storage.check_every = Duration::from_millis(20);
        config
    }

    struct Running {
        url: String,
        current: tokio::sync::watch::Receiver<Option<crate::http::AppState>>,
        trigger: ShutdownTrigger,
        handle: tokio::task::JoinHandle<anyhow::Result<()>>,
        client: reqwest::Client,
    }

    async fn start(config: Config) -> Running {
        let app = App::build(
            config,
            Options {
                dev: false,
                clock: ManualClock::starting_now(),
            },
        )
        .expect("app builds");
        let current = app.current();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (trigger, shutdown) = ShutdownTrigger::new();
        let handle = tokio::spawn(app.run(listener, shutdown));
        Running {
            url,
            current,
            trigger,
            handle,
            client: reqwest::Client::new(),
        }
    }

    impl Running {
        /// The build serving now. Not to be held across a reopen: a held
        /// state keeps its store, and the data dir, open.
        fn state(&self) -> crate::http::AppState {
            self.current.borrow().clone().expect("a build is serving")
        }

        /// Waits until `/readyz` says ready, at most `limit`; every answer
        /// meanwhile is 200 or 503, never anything else.
        async fn ready_within(&self, limit: Duration) {
            let started = Instant::now();
            loop {
                let (status, body) = self.get("/readyz").await;
                match status {
                    200 => return,
                    503 => {}
                    _ => panic!("/readyz answered {status}: {body}"),
                }
                assert!(
                    started.elapsed() < limit,
                    "not ready after {limit:?}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// Sends `body` from `from` as message `sid`: (status, Retry-After, body, time taken).
        async fn send(
            &self,
            from: &str,
            body: &str,
            sid: &str,
        ) -> (u16, Option<String>, String, Duration) {
            let url = format!("{}/whatsapp/webhook", self.url);
            let fields: Vec<(String, String)> = [
                ("MessageSid", sid.to_owned()),
                ("From", format!("whatsapp:{from}")),
                ("To", "whatsapp:+14155238886".to_owned()),
                ("Body", body.to_owned()),
                ("NumMedia", "0".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let signature = SignatureVerifier::new(TOKEN).sign(&url, &fields);
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let started = Instant::now();
            let response = self
                .client
                .post(&url)
                .header("x-twilio-signature", signature)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            (status, retry_after, text, started.elapsed())
        }

        async fn get(&self, path: &str) -> (u16, String) {
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }

        async fn message_count(&self, phone: &str) -> Option<u64> {
            let (status, body) = self.get(&format!("/admin/sessions/{phone}")).await;
            if status == 404 {
                return None;
            }
            let session: serde_json::Value = serde_json::from_str(&body).unwrap();
            session["messageCount"].as_u64()
        }

        async fn stop(self) -> (anyhow::Result<()>, Duration) {
            let started = Instant::now();
            self.trigger.fire();
            let result = self.handle.await.expect("server task");
            (result, started.elapsed())
        }
    }

    fn metric(text: &str, series: &str) -> f64 {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_fails_fast_with_503_serves_what_needs_no_write_then_reopens_the_store()
    {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config(dir.path())).await;
        let (status, _, acknowledged, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!(status, 200);
        let (ready, _) = server.get("/readyz").await;
        assert_eq!(ready, 200);

        // sled takes writes into memory; the flush is what fails.
        server.state().sessions.fault().fail_flushes();
        let (status, retry_after, _, took) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 503, "a failed flush is retryable");
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert!(
            took < Duration::from_secs(1),
            "fast, not the request timeout: {took:?}"
        );

        let (ready, body) = server.get("/readyz").await;
        assert_eq!(ready, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["storageFailure"]["kind"], "flush", "{body}");
        assert!(
            body["storageFailure"]["reason"]
                .as_str()
                .unwrap()
                .contains("flush"),
            "{body}"
        );

        // Every later write is refused at once, without touching sled.
        let (status, _, _, took) = server.send(ASHA, "hi", "SMunit-c").await;
        assert_eq!(status, 503);
        assert!(took < Duration::from_secs(1), "{took:?}");
        // What needs no write goes on: a redelivery of an acknowledged
        // exchange, a refusal to a stranger.
        let (status, _, again, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!((status, again), (200, acknowledged.clone()));
        let (status, _, refusal, _) = server.send(STRANGER, "hi", "SMunit-d").await;
        assert_eq!(status, 200);
        assert!(refusal.contains("registered with"), "{refusal}");
        // The exchange whose flush failed was never acknowledged: its
        // redelivery is not answered from memory.
        let (status, _, _, _) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 503);

        let (_, metrics) = server.get("/metrics").await;
        assert_eq!(metric(&metrics, "roster_storage_failed"), 1.0);
        assert!(metric(&metrics, r#"roster_storage_failures_total{kind="flush"}"#) >= 1.0);
        assert_eq!(
            metric(
                &metrics,
                r#"roster_storage_failures_total{kind="data-dir"}"#
            ),
            0.0
        );
        assert!(
            metric(&metrics, "roster_storage_refused_writes_total") >= 2.0,
            "{metrics}"
        );

        // Space again: the watcher's probe succeeds and the store is
        // reopened in-process, on the same listener; the failed store and
        // everything built on it are let go.
        let failed = Arc::downgrade(&server.state().sessions);
        server.state().sessions.fault().free();
        server.ready_within(Duration::from_secs(10)).await;
        assert!(failed.upgrade().is_none(), "the failed store was let go");
        assert!(!server.handle.is_finished(), "the server never stopped");
        let (_, metrics) = server.get("/metrics").await;
        assert_eq!(metric(&metrics, "roster_storage_failed"), 0.0);

        // What was acknowledged is there; the unacknowledged exchange counts
        // exactly once, whether or not it reached the disk.
        let before = server
            .message_count(MEMBER)
            .await
            .expect("the session survived");
        assert!((1..=2).contains(&before), "{before}");
        let (status, _, _, _) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 200);
        assert_eq!(server.message_count(MEMBER).await, Some(2));
        let (status, _, again, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!((status, again), (200, acknowledged));
        assert_eq!(server.message_count(MEMBER).await, Some(2));
        // And the reopened store writes: a new member's message is kept.
        let (status, _, _, _) = server.send(ASHA, "hi", "SMunit-e").await;
        assert_eq!(status, 200);
        assert_eq!(server.message_count(ASHA).await, Some(1));
        let (result, _) = server.stop().await;
        result.expect("a clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_during_a_reopen_that_cannot_finish_ends_at_once_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config(dir.path())).await;
        assert_eq!(server.send(MEMBER, "hi", "SMunit-r0").await.0, 200);
        server.state().sessions.fault().fail_flushes();
        assert_eq!(server.send(MEMBER, "hi", "SMunit-r1").await.0, 503);
        // Something still holds the failed store, so the data dir stays
        // locked and the reopen waits for it.
        let held = server.state();
        held.sessions.fault().free();
        let mut current = server.current.clone();
        tokio::time::timeout(Duration::from_secs(10), current.wait_for(Option::is_none))
            .await
            .expect("the reopen began")
            .unwrap();
        let started = Instant::now();
        server.trigger.fire();
        let result = tokio::time::timeout(Duration::from_secs(2), server.handle)
            .await
            .expect("the stop did not wait for the reopen")
            .expect("server task");
        let error = format!("{:#}", result.expect_err("nothing reopened is an error"));
        assert!(error.contains("being reopened"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(held);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_refuses_every_waiter_and_the_stop_says_what_was_not_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.server.shutdown_timeout = Duration::from_secs(2);
        // No probe during this test: the failure stays.
        config.storage.check_every = Duration::from_secs(3600);
        let server = Arc::new(start(config).await);
        assert_eq!(server.send(MEMBER, "hi", "SMunit-w0").await.0, 200);
        server.state().sessions.fault().fill();
        let senders: Vec<_> = ["+919845000001", "+919845000002", "+919845000003", MEMBER]
            .into_iter()
            .enumerate()
            .map(|(i, phone)| {
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    server
                        .send(phone, "hi", &format!("SMunit-w{}", i + 1))
                        .await
                })
            })
            .collect();
        for sender in senders {
            let (status, _, _, took) = sender.await.unwrap();
            assert_eq!(status, 503);
            assert!(took < Duration::from_secs(1), "{took:?}");
        }
        let health = Arc::clone(server.state().sessions.health());
        assert_eq!(health.failure().map(|f| f.kind), Some(FailureKind::Write));
        let server = Arc::into_inner(server).expect("senders are done");
        let (result, took) = server.stop().await;
        assert!(
            took < Duration::from_secs(2) + crate::store::FINAL_FLUSH_LIMIT,
            "{took:?}"
        );
        let error = result.expect_err("what could not be flushed is an error");
        let error = format!("{error:#}");
        assert!(error.contains("state not flushed"), "{error}");
        assert!(error.contains("none of them was acknowledged"), "{error}");
    }
}

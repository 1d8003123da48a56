//! A real `redis-server` per test, on a Unix socket in a temp dir (no
//! ports to collide), with AOF on and `appendfsync always`, so a restart
//! keeps every write as the embedded strict mode does.
//!
//! Where `redis-server` is not installed the tests print `SKIPPED` and
//! pass, unless `ROSTER_REQUIRE_REDIS` is set (as `.ci/run` sets it, after
//! installing Debian's redis-server): then a missing server fails them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or `None` (after saying why) where there is none.
    pub fn start(test: &str) -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("ROSTER_REQUIRE_REDIS").is_none(),
                "{test}: ROSTER_REQUIRE_REDIS is set but redis-server is not installed"
            );
            println!("SKIPPED: {test} needs redis-server (apt-get install redis-server)");
            return None;
        }
        let mut server = RedisServer {
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.launch();
        Some(server)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL Roster connects to.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while self.connection().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on {}",
                self.socket().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
        redis::cmd("PING").query::<String>(&mut connection)?;
        Ok(connection)
    }

    /// Runs one command on the server, for a test to look inside.
    pub fn query<T: redis::FromRedisValue>(&self, command: &mut redis::Cmd) -> T {
        let mut connection = self.connection().expect("redis answers");
        command.query(&mut connection).expect("redis command")
    }

    /// `kill -9`s the server (what a crash or an OOM kill does).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same socket and data (its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

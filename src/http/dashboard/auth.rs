//! Signing in to the dashboard: sessions kept in memory, the cookie, the
//! CSRF token and Origin check of every POST, and the limit on failed
//! sign-ins per client address.
//!
//! A session lives only in this process: a restart (and so a changed
//! admin token) signs everyone out. The cookie is HttpOnly, SameSite=Strict,
//! `Secure` when the dashboard is reached over https, and lasts 12 hours.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header, request::Parts};
use subtle::ConstantTimeEq;

use crate::clock::SharedClock;

/// The cookie's name.
pub(crate) const COOKIE: &str = "roster_dashboard";
/// How long a sign-in lasts.
pub(crate) const SESSION_SECS: u64 = 12 * 3600;
/// The window in which failed sign-ins are counted.
const FAILURE_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Most sessions kept at once (the oldest go first).
const MAX_SESSIONS: usize = 1000;
/// Most client addresses whose failures are remembered.
const MAX_FAILING_CLIENTS: usize = 10_000;

/// A signed-in organiser.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub id: String,
    pub csrf: String,
    expires_ms: u64,
}

/// Sessions and failed sign-ins.
pub(crate) struct Auth {
    sessions: Mutex<HashMap<String, SignedIn>>,
    /// Client address → (start of its window, failures in it).
    failures: Mutex<HashMap<IpAddr, (u64, u32)>>,
    attempts: u32,
    clock: SharedClock,
}

/// 32 random bytes as hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No system randomness is no reason to hand out guessable tokens:
        // mix what differs per call and per process, hashed.
        use sha1::{Digest, Sha1};
        let seed = format!(
            "{:?}{:?}{}",
            std::time::SystemTime::now(),
            std::thread::current().id(),
            std::process::id()
        );
        let digest = Sha1::digest(seed.as_bytes());
        bytes[..20].copy_from_slice(&digest);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    pub(crate) fn new(attempts: u32, clock: SharedClock) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            attempts,
            clock,
        }
    }

    /// Whether `client` may try to sign in now (not too many failures).
    pub(crate) fn may_try(&self, client: IpAddr) -> bool {
        let now = self.clock.now_ms();
        let Ok(failures) = self.failures.lock() else {
            return false;
        };
        match failures.get(&client) {
            Some(&(start, count)) => now >= start + FAILURE_WINDOW_MS || count < self.attempts,
            None => true,
        }
    }

    /// Counts a failed sign-in from `client`.
    pub(crate) fn failed(&self, client: IpAddr) {
        let now = self.clock.now_ms();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_FAILING_CLIENTS {
            failures.retain(|_, (start, _)| now < *start + FAILURE_WINDOW_MS);
        }
        let entry = failures.entry(client).or_insert((now, 0));
        if now >= entry.0 + FAILURE_WINDOW_MS {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Whether `presented` is the admin token; constant time.
    pub(crate) fn token_matches(presented: &str, token: &str) -> bool {
        !token.is_empty() && bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
    }

    /// A new session.
    pub(crate) fn sign_in(&self) -> SignedIn {
        let now = self.clock.now_ms();
        let session = SignedIn {
            id: random_token(),
            csrf: random_token(),
            expires_ms: now + SESSION_SECS * 1000,
        };
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.expires_ms > now);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .values()
                    .min_by_key(|s| s.expires_ms)
                    .map(|s| s.id.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(session.id.clone(), session.clone());
        }
        session
    }

    pub(crate) fn sign_out(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// The live session the request's cookie names.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let id = cookie(headers, COOKIE)?;
        let now = self.clock.now_ms();
        let sessions = self.sessions.lock().ok()?;
        sessions.get(id).filter(|s| s.expires_ms > now).cloned()
    }
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that signs `session` in.
pub(crate) fn session_cookie(session: &SignedIn, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{}",
        session.id,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that signs out.
pub(crate) fn cleared_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a POST carries the session's CSRF token and, when the browser
/// says where it comes from (Origin, else Referer), comes from this site.
pub(crate) fn post_allowed(
    session: &SignedIn,
    presented_csrf: &str,
    headers: &HeaderMap,
    public_url: Option<&str>,
) -> bool {
    let token_ok = !presented_csrf.is_empty()
        && bool::from(presented_csrf.as_bytes().ct_eq(session.csrf.as_bytes()));
    token_ok && same_origin(headers, public_url)
}

/// Whether the request's Origin (else Referer) is this server: the `Host`
/// it was sent to, or the public URL. Absent both, true (the CSRF token
/// decides); `Origin: null` is never this server.
pub(crate) fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(source) = text(header::ORIGIN).or_else(|| text(header::REFERER)) else {
        return true;
    };
    let Some(authority) = authority_of(source) else {
        return false;
    };
    if let Some(public) = public_url.and_then(authority_of)
        && public.eq_ignore_ascii_case(authority)
    {
        return true;
    }
    text(header::HOST).is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

/// `host[:port]` of an `http(s)://` URL.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// The client's address: the proxy's `X-Forwarded-For` (its last entry,
/// which the proxy itself wrote) when the peer is on loopback, else the
/// peer. `None` when the server was not started with connection info.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match (peer, forwarded) {
        (Some(peer), Some(forwarded)) if peer.is_loopback() => Some(forwarded),
        (Some(peer), _) => Some(peer),
        (None, forwarded) => forwarded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origin_must_be_this_host_or_the_public_url() {
        let here = "127.0.0.1:3000";
        assert!(same_origin(&headers(&[("host", here)]), None));
        assert!(same_origin(
            &headers(&[("host", here), ("origin", "http://127.0.0.1:3000")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[("host", here), ("origin", "http://evil.example")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[("host", here), ("origin", "null")]),
            None
        ));
        assert!(same_origin(
            &headers(&[
                ("host", here),
                ("referer", "https://roster.example.org/dashboard")
            ]),
            Some("https://roster.example.org")
        ));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; roster_dashboard=abc; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
    }
}

//! `X-Twilio-Signature`: computing and checking it exactly as Twilio's SDKs do.
//!
//! The signed string is the URL Twilio called followed, for every POST field
//! name in byte order, by each distinct value of that name in order, as
//! `name + value`. The signature is `base64(HMAC-SHA1(auth_token, string))`.
//! Like the SDKs, a signature is accepted for the URL with or without the
//! scheme's default port, and compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// Checks signatures with one auth token; cheap to clone.
#[derive(Clone)]
pub struct SignatureVerifier {
    keyed: HmacSha1,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignatureVerifier(<auth token>)")
    }
}

impl SignatureVerifier {
    pub fn new(auth_token: &str) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed =
            HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
        SignatureVerifier { keyed }
    }

    /// The signature Twilio would send for `url` and these form fields.
    pub fn sign<K: AsRef<str>, V: AsRef<str>>(&self, url: &str, params: &[(K, V)]) -> String {
        BASE64.encode(self.mac(url, params).finalize().into_bytes())
    }

    /// Whether `signature` is Twilio's for `url` (with or without its default
    /// port) and these form fields.
    pub fn verify<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        params: &[(K, V)],
        signature: &str,
    ) -> bool {
        let Ok(given) = BASE64.decode(signature.trim()) else {
            return false;
        };
        url_variants(url)
            .into_iter()
            .flatten()
            .any(|candidate| self.mac(&candidate, params).verify_slice(&given).is_ok())
    }

    fn mac<K: AsRef<str>, V: AsRef<str>>(&self, url: &str, params: &[(K, V)]) -> HmacSha1 {
        let mut mac = self.keyed.clone();
        mac.update(url.as_bytes());
        let mut fields: Vec<(&str, &str)> = params
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        fields.sort_unstable();
        fields.dedup();
        for (name, value) in fields {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac
    }
}

/// The URL as given, and the same URL with its default port added or removed.
fn url_variants(url: &str) -> [Option<String>; 2] {
    let other = (|| {
        let (scheme, rest) = url.split_once("://")?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => "443",
            "http" => "80",
            _ => return None,
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        // The port follows the last `:` unless that is inside an IPv6 literal.
        let host_and_port = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => {
                Some((&authority[..i], &authority[i + 1..]))
            }
            _ => None,
        };
        match host_and_port {
            Some((host, port)) if port == default_port => Some(format!("{scheme}://{host}{tail}")),
            Some(_) => None,
            None => Some(format!("{scheme}://{authority}:{default_port}{tail}")),
        }
    })();
    [Some(url.to_owned()), other]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_is_added_and_removed() {
        assert_eq!(
            url_variants("https://a.example/x?y=1")[1].as_deref(),
            Some("https://a.example:443/x?y=1")
        );
        assert_eq!(
            url_variants("http://a.example:80")[1].as_deref(),
            Some("http://a.example")
        );
        assert_eq!(url_variants("https://a.example:8443/x")[1], None);
        assert_eq!(
            url_variants("https://[::1]/x")[1].as_deref(),
            Some("https://[::1]:443/x")
        );
    }

    #[test]
    fn garbage_signature_is_rejected() {
        let verifier = SignatureVerifier::new("token");
        let none: [(&str, &str); 0] = [];
        assert!(!verifier.verify("https://a.example/", &none, "not base64!"));
        assert!(!verifier.verify("https://a.example/", &none, ""));
    }
}

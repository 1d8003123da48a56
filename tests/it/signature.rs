//! Twilio's signature vectors, computed with Twilio's official SDKs.

use roster::twilio::{SignatureVerifier, parse_form};

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    auth_token: String,
    url: String,
    form_body: String,
    expected_signature: String,
}

fn vectors() -> Vec<Vector> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/twilio-vectors.json");
    let text = std::fs::read_to_string(path).expect("vectors file");
    let vectors: Vectors = serde_json::from_str(&text).expect("vectors parse");
    assert!(vectors.vectors.len() >= 4);
    vectors.vectors
}

#[test]
fn signs_exactly_as_the_sdks_do() {
    for v in vectors() {
        let fields = parse_form(v.form_body.as_bytes()).expect("vector form parses");
        let verifier = SignatureVerifier::new(&v.auth_token);
        assert_eq!(
            verifier.sign(&v.url, &fields),
            v.expected_signature,
            "vector {}",
            v.name
        );
        assert!(
            verifier.verify(&v.url, &fields, &v.expected_signature),
            "vector {}",
            v.name
        );
    }
}

#[test]
fn accepts_the_url_with_and_without_its_default_port() {
    let all = vectors();
    let with_port = all
        .iter()
        .find(|v| v.name == "whatsapp-unicode-with-port")
        .unwrap();
    let fields = parse_form(with_port.form_body.as_bytes()).unwrap();
    let verifier = SignatureVerifier::new(&with_port.auth_token);
    // The server knows itself without the port; Twilio signed with it.
    assert!(verifier.verify(
        "https://bot.example.com/whatsapp/webhook",
        &fields,
        &with_port.expected_signature
    ));
    let without = all.iter().find(|v| v.name == "whatsapp-unicode").unwrap();
    assert!(verifier.verify(
        "https://bot.example.com:443/whatsapp/webhook",
        &fields,
        &without.expected_signature
    ));
    // A non-default port is part of the URL.
    assert!(!verifier.verify(
        "https://bot.example.com:8443/whatsapp/webhook",
        &fields,
        &without.expected_signature
    ));
}

#[test]
fn any_change_breaks_the_signature() {
    for v in vectors() {
        let fields = parse_form(v.form_body.as_bytes()).unwrap();
        let verifier = SignatureVerifier::new(&v.auth_token);
        let mut changed = fields.clone();
        changed.push(("Extra".into(), "".into()));
        assert!(
            !verifier.verify(&v.url, &changed, &v.expected_signature),
            "{}",
            v.name
        );
        assert!(
            !verifier.verify(&format!("{}x", v.url), &fields, &v.expected_signature),
            "{}",
            v.name
        );
        assert!(!SignatureVerifier::new("other").verify(&v.url, &fields, &v.expected_signature));
    }
}

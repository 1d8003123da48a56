//! The fault suite (issue 16, section 7): whatever arrives, Roster neither
//! panics nor stalls.
//!
//! - Property tests (proptest) over the parsers and renderers that meet
//!   outside input: the webhook form and [`Inbound`], the signature check,
//!   phone numbers, the member CSV (random bytes and mutations of a valid
//!   file), the assistant (random Unicode up to 4,000 characters, in a
//!   conversation with a previous search) and the TwiML renderer (whose
//!   output must parse as XML and give the text back). Each call must also
//!   return within [`BOUND`]: a guard against pathological inputs (a
//!   quadratic path, a backtracking blow-up), not a benchmark.
//! - An HTTP fuzz: [`FUZZ_REQUESTS`] random signed requests against the
//!   real router on 127.0.0.1:0, from members and strangers, with random
//!   fields, bodies, MessageSids and follow-ups, concurrently: no response
//!   may be a 5xx (or a 408) and no connection may break.
//!
//! Every random choice comes from a seeded generator, so a failure can be
//! replayed: proptest prints its own seed and minimal case; the fuzz uses
//! `FAULTS_SEED` (printed at the start) when set.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use roster::assistant::Assistant;
use roster::conversation::Session;
use roster::directory::{Directory, Member};
use roster::phone::{PhoneNumber, Region};
use roster::twilio::{self, Inbound, Reply, SignatureVerifier};

/// The most one call may take. Generous: debug builds on a loaded machine.
const BOUND: Duration = Duration::from_millis(200);

/// Runs `f`, and fails if it takes longer than [`BOUND`] twice in a row
/// (once may be the scheduler: the machine is shared and the HTTP fuzz runs
/// beside these tests; a pathological input is slow every time).
fn timed<T>(what: &str, f: impl Fn() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    if took < BOUND {
        return out;
    }
    let started = Instant::now();
    let out = f();
    let again = started.elapsed();
    assert!(
        again < BOUND,
        "{what} took {took:?}, then {again:?} (bound {BOUND:?})"
    );
    out
}

/// `n` cases, or `PROPTEST_CASES` when set (for a longer run by hand).
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A regex strategy compiled once: a `&str` strategy (and so `any::<String>()`)
/// compiles its regex again for every value it makes, which made generating
/// the fuzz's requests take longer than sending them.
fn re(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(pattern).expect("a valid pattern")
}

/// Any text without control characters, as `any::<String>()` makes.
fn any_text() -> proptest::string::RegexGeneratorStrategy<String> {
    re("\\PC*")
}

const REGIONS: [&str; 8] = ["IN", "US", "GB", "DE", "BR", "AE", "SG", "NG"];

fn region() -> impl Strategy<Value = Region> {
    prop::sample::select(&REGIONS[..]).prop_map(|code| code.parse().expect("a region"))
}

/// Bytes that look like a form more often than uniform bytes would: the
/// separators, percent escapes (often of partial UTF-8), letters and any byte.
fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(&b"&=+%"[..]).prop_map(|b| vec![b]),
        3 => re("[0-9A-Fa-f]{0,2}").prop_map(|s| format!("%{s}").into_bytes()),
        3 => re("[A-Za-z]{1,8}").prop_map(String::into_bytes),
        2 => any::<u8>().prop_map(|b| vec![b]),
        1 => any_text().prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|pieces| pieces.concat())
}

/// Names a webhook reads, others, and anything.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(
            &["From", "Body", "MessageSid", "SmsMessageSid", "NumMedia", "To", "WaId"][..]
        )
        .prop_map(str::to_owned),
        1 => any_text(),
    ]
}

/// Texts a sender field might hold: WhatsApp addresses, digits, anything.
fn phone_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => re("(whatsapp:)?\\+?[0-9 ()./-]{0,20}"),
        2 => re("[0-9+]{0,25}"),
        1 => any_text(),
        1 => prop::sample::select(&[MEMBER, ASHA, INACTIVE, STRANGER][..])
            .prop_map(|p| format!("whatsapp:{p}")),
    ]
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![phone_text(), any_text(), re("[ -~]{0,70}")]
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((field_name(), field_value()), 0..12)
}

proptest! {
    #![proptest_config(cases(400))]

    #[test]
    fn form_parsing_never_panics_and_reads_back_what_it_decoded(
        body in prop_oneof![form_bytes(), prop::collection::vec(any::<u8>(), 0..1024)],
        region in region(),
    ) {
        let parsed = timed("parse_form", || twilio::parse_form(&body).map(owned));
        if let Ok(fields) = parsed {
            let again = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let reread = twilio::parse_form(again.as_bytes()).map(owned);
            prop_assert_eq!(reread, Ok(fields.clone()));
            let inbound = timed("Inbound::from_form", || Inbound::from_form(&fields, region));
            if let Ok(inbound) = inbound {
                check_inbound(&inbound, region)?;
            }
        }
    }

    #[test]
    fn an_inbound_message_is_read_from_any_fields(fields in fields(), region in region()) {
        let body = encode_form(&fields);
        let parsed = twilio::parse_form(body.as_bytes()).map(owned);
        prop_assert_eq!(parsed.as_ref(), Ok(&fields));
        if let Ok(inbound) = timed("Inbound::from_form", || Inbound::from_form(&fields, region)) {
            check_inbound(&inbound, region)?;
            let from = fields.iter().find(|(n, _)| n == "From").map(|(_, v)| v.clone());
            prop_assert!(from.is_some(), "a message without From was read");
        }
    }

    #[test]
    fn the_signature_check_takes_anything_and_accepts_only_the_signature(
        url in url(),
        fields in fields(),
        signature in prop_oneof![
            any_text(),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(b)
            }),
        ],
        token in "[ -~]{0,40}",
    ) {
        let verifier = SignatureVerifier::new(&token);
        let accepted = timed("verify", || verifier.verify(&url, &fields, &signature));
        prop_assert!(!accepted, "a random signature was accepted");
        let real = timed("sign", || verifier.sign(&url, &fields));
        prop_assert!(timed("verify", || verifier.verify(&url, &fields, &real)));
        let mut reordered = fields.clone();
        reordered.reverse();
        prop_assert!(verifier.verify(&url, &reordered, &real), "order does not matter");
        let mut more = fields.clone();
        more.push(("Injected".to_owned(), "field".to_owned()));
        prop_assert!(!verifier.verify(&url, &more, &real), "an added field is caught");
        prop_assert!(!verifier.verify(&format!("{url}x"), &fields, &real), "another URL");
    }

    #[test]
    fn phone_parsing_never_panics_and_its_numbers_read_back(
        text in prop_oneof![
            phone_text(),
            any_text(),
            "[0-9]{0,40}",
            "(\\+|00)?[0-9]{1,3}[ -]?[0-9]{2,6}[ -]?[0-9]{2,8}",
        ],
        region in region(),
    ) {
        if let Ok(phone) = timed("PhoneNumber::parse", || PhoneNumber::parse(&text, region)) {
            let e164 = phone.e164();
            prop_assert!(e164.starts_with('+') && e164.len() <= 16, "{}", e164);
            prop_assert_eq!(PhoneNumber::parse(&e164, region), Ok(phone));
            prop_assert_eq!(PhoneNumber::from_stored(&e164), Some(phone));
            prop_assert_eq!(phone.whatsapp_address(), format!("whatsapp:{e164}"));
            prop_assert!(!phone.masked().contains(&e164[1..]), "masked shows the number");
        }
    }
}

/// What any [`Inbound`] read from a form must satisfy.
fn check_inbound(inbound: &Inbound, region: Region) -> Result<(), TestCaseError> {
    let e164 = inbound.from.e164();
    prop_assert_eq!(PhoneNumber::parse(&e164, region), Ok(inbound.from));
    if let Some(sid) = &inbound.message_sid {
        prop_assert!(!sid.is_empty() && sid.len() <= 64, "{:?}", sid);
    }
    Ok(())
}

fn owned(fields: twilio::FormFields<'_>) -> Vec<(String, String)> {
    fields
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// URLs, well-formed and not: schemes, hosts, IPv6 brackets, ports, paths.
fn url() -> impl Strategy<Value = String> {
    let scheme =
        prop::sample::select(&["http://", "https://", "HTTPS://", "ftp://", "", "://"][..]);
    let host = prop_oneof![
        re("[a-z0-9.-]{0,20}"),
        Just("[::1]".to_owned()),
        re("\\[[0-9a-f:]{0,10}\\]?"),
        any_text(),
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":443".to_owned()),
        Just(":80".to_owned()),
        re(":[0-9]{0,6}"),
        Just(":".to_owned()),
    ];
    let tail = prop_oneof![re("(/[a-z?#=&:]{0,12}){0,3}"), any_text()];
    (scheme, host, port, tail).prop_map(|(s, h, p, t)| format!("{s}{h}{p}{t}"))
}

// ---- The member CSV ----

fn valid_csv() -> &'static [u8] {
    static CSV: OnceLock<Vec<u8>> = OnceLock::new();
    CSV.get_or_init(|| std::fs::read(fixture("members-v1.csv")).expect("members-v1.csv"))
}

/// One change to a file's bytes; positions are taken modulo its length.
#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Replace { at: usize, byte: u8 },
    DuplicateLine { line: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(&b",\"\n\r;\t\0\xef\xbb\xbf \\"[..]);
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(special.clone(), 1..8),
                prop::collection::vec(any::<u8>(), 1..16),
                any_text().prop_map(String::into_bytes),
                Just(b"+91 98450 00001".to_vec()),
                Just(b",,,,,,,,,,,,,,,,,,,,,,,,,,,,,".to_vec()),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), prop_oneof![special, any::<u8>()])
            .prop_map(|(at, byte)| Mutation::Replace { at, byte }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Delete { at, len: n } => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Mutation::Insert { at, bytes: new } => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Replace { at, byte } => {
                if !bytes.is_empty() {
                    bytes[at % len] = *byte;
                }
            }
            Mutation::DuplicateLine { line } => {
                let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
                if !lines.is_empty() {
                    let copy = lines[line % lines.len()].to_vec();
                    bytes.extend_from_slice(&copy);
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
        }
    }
    bytes
}

/// Loads `bytes` as the member file through the real loader, from disk.
fn load_file(bytes: &[u8], region: Region) -> Option<Directory> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("members.csv");
    std::fs::write(&path, bytes).expect("write the csv");
    timed("Directory::load", || Directory::load(&path, region)).ok()
}

/// What every directory that loaded must satisfy, whatever its file held.
fn check_directory(directory: &Directory, source: &[u8]) -> Result<(), TestCaseError> {
    let lines = source.split(|&b| b == b'\n' || b == b'\r').count();
    prop_assert!(directory.len() + directory.rejected().len() <= lines);
    for member in directory.members() {
        prop_assert!(!member.name.trim().is_empty(), "a member without a name");
        let found = directory.member(&member.phone).map(|m| &m.id);
        prop_assert_eq!(found, Some(&member.id), "phones are unique and found");
        prop_assert_eq!(
            directory.by_id(&member.id).map(|m| m.phone),
            Some(member.phone)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn the_csv_loader_takes_any_bytes(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            prop::collection::vec(
                prop::sample::select(&b"name,phone\"\n\r,;+0123456789 aZ\xc3\xa9"[..]),
                0..4096,
            ),
        ],
        region in region(),
    ) {
        if let Some(directory) = load_file(&bytes, region) {
            check_directory(&directory, &bytes)?;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(directory) = timed("Directory::from_csv", || Directory::from_csv(&text, region)) {
            check_directory(&directory, text.as_bytes())?;
        }
    }

    #[test]
    fn the_csv_loader_takes_any_mutation_of_a_valid_file(
        mutations in prop::collection::vec(mutation(), 1..6),
        region in region(),
    ) {
        let bytes = mutate(valid_csv().to_vec(), &mutations);
        if let Some(directory) = load_file(&bytes, region) {
            check_directory(&directory, &bytes)?;
        }
    }
}

#[test]
fn the_unmutated_csv_loads_whole() {
    let directory = load_file(valid_csv(), Region::default()).expect("the valid file loads");
    assert_eq!(directory.len(), 11);
    assert!(directory.rejected().is_empty());
}

// ---- The assistant ----

struct World {
    assistant: Assistant,
    /// Sanjay, who asks.
    member: Member,
    /// His session after "Find doctors in Bangalore".
    session: Session,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let directory =
            Directory::load(&fixture("members-v1.csv"), Region::default()).expect("directory");
        let assistant = Assistant::new(Arc::new(directory), "Test Network");
        let phone = PhoneNumber::parse(MEMBER, Region::default()).expect("phone");
        let member = assistant
            .directory()
            .active_member(&phone)
            .expect("Sanjay is active")
            .clone();
        let mut session = Session::new(&member, 1_764_000_000_000, 30 * 60 * 1000);
        converse(
            &assistant,
            &member,
            &mut session,
            "Find doctors in Bangalore",
        );
        assert!(session.last_search().is_some(), "a previous search");
        World {
            assistant,
            member,
            session,
        }
    })
}

/// One exchange, recorded in `session` as the webhook records it.
fn converse(
    assistant: &Assistant,
    member: &Member,
    session: &mut Session,
    text: &str,
) -> roster::assistant::Answer {
    let understanding = assistant.understand(text, session, member);
    let answer = assistant.answer(&understanding, member);
    let now = session.last_activity_ms + 1000;
    let entry = answer.entry(text, now, &understanding);
    session.record(entry, understanding.runs_search(), 10, 30 * 60 * 1000);
    answer
}

/// Messages of up to 4,000 characters: words the assistant knows, numbers,
/// punctuation, emoji, combining marks, scripts, controls, anything.
fn message() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => prop::sample::select(
            &[
                "doctors", "in", "Bangalore", "Chennai", "more", "contact", "the", "second",
                "what", "about", "only", "cardiologists", "lawyers", "Asha", "Rao", "1", "2",
                "#3", "details", "of", "hi", "thanks", "help", "not", "near", "me", "batch",
                "'95", "2005", "all", "engineers", "Mumbai", "tell", "me", "about",
            ][..]
        )
        .prop_map(str::to_owned),
        2 => Just(" ".to_owned()),
        2 => any::<char>().prop_map(String::from),
        1 => re("[0-9]{1,12}"),
        1 => re("\\PC{1,20}"),
        1 => prop::sample::select(
            &["😀", "\u{301}", "\u{200B}", "\u{202E}", "\n", "\t", "डॉक्टर", "医生", "'", "\"", "<&>"][..]
        )
        .prop_map(str::to_owned),
    ];
    // Long messages repeat a random stretch (building thousands of random
    // tokens one by one would cost more than the tests themselves).
    prop_oneof![
        8 => prop::collection::vec(token.clone(), 0..60).prop_map(|tokens| tokens.concat()),
        1 => (prop::collection::vec(token, 1..40), 10..400usize)
            .prop_map(|(tokens, times)| tokens.concat().repeat(times)),
    ]
    .prop_map(|text| text.chars().take(4000).collect())
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn the_assistant_answers_any_message_in_time(text in message()) {
        let world = world();
        let mut session = world.session.clone();
        let answer = timed("understand + answer", || {
            let understanding = world.assistant.understand(&text, &session, &world.member);
            world.assistant.answer(&understanding, &world.member)
        });
        check_answer(&answer)?;
        // And the conversation goes on from whatever that was.
        converse(&world.assistant, &world.member, &mut session, &text);
        for follow_up in ["more", "2", "contact"] {
            let answer = timed(follow_up, || {
                let understanding = world.assistant.understand(follow_up, &session, &world.member);
                world.assistant.answer(&understanding, &world.member)
            });
            check_answer(&answer)?;
        }
    }
}

/// The case the property above found: long words run together from known
/// ones, numbers and other scripts, which no typo can bring near a known
/// word, cost the typo search len² deletions each (290 ms a message in a
/// debug build, 64 words of 40 characters) until it skipped them.
#[test]
fn a_message_of_long_unknown_words_is_understood_in_time() {
    let world = world();
    let pieces = [
        "doctors",
        " ",
        "in",
        "Bangalore",
        "tellabout",
        "2005",
        "Rao",
        "é",
        "डॉक्टर",
        "#3",
        "😀",
        "'95",
        "x",
    ];
    let text: String = pieces
        .iter()
        .cycle()
        .take(2000)
        .copied()
        .collect::<String>();
    let text: String = text.chars().take(4000).collect();
    let answer = timed("64 long words", || {
        let understanding = world
            .assistant
            .understand(&text, &world.session, &world.member);
        world.assistant.answer(&understanding, &world.member)
    });
    assert!(!answer.text.is_empty());
}

/// Any answer: something to say, that renders; only active members shown;
/// no private member's phone or email.
fn check_answer(answer: &roster::assistant::Answer) -> Result<(), TestCaseError> {
    prop_assert!(!answer.text.trim().is_empty(), "an empty answer");
    prop_assert!(answer.shown_ids.len() <= answer.result_count.max(1));
    let directory = world().assistant.directory();
    for id in &answer.shown_ids {
        prop_assert!(
            directory.by_id(id).is_some_and(|m| m.active),
            "{} shown",
            id
        );
    }
    for member in directory.members().iter().filter(|m| !m.share_contact) {
        prop_assert!(
            !answer.text.contains(&member.phone.e164()),
            "{} leaked",
            member.name
        );
        prop_assert!(
            !answer.text.contains(&member.email),
            "{} leaked",
            member.name
        );
    }
    let reply = Reply::text(&answer.text);
    prop_assert_eq!(
        parse_twiml(&reply.to_twiml()).map_err(TestCaseError::fail)?,
        reply.messages()
    );
    Ok(())
}

// ---- TwiML ----

/// The `<Message>` texts of a TwiML document, checking its whole structure:
/// the declaration, one `<Response>` (or `<Response/>`), only `<Message>`s
/// inside it, nothing after it.
fn parse_twiml(twiml: &str) -> Result<Vec<String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(twiml);
    let mut messages: Vec<String> = Vec::new();
    let mut depth = 0;
    let mut closed = false;
    loop {
        let event = reader.read_event().map_err(|e| format!("{e}: {twiml}"))?;
        match event {
            Event::Decl(_) if depth == 0 && !closed && messages.is_empty() => {}
            Event::Empty(e) if depth == 0 && !closed && e.name().as_ref() == b"Response" => {
                closed = true
            }
            Event::Start(e) if depth == 0 && !closed && e.name().as_ref() == b"Response" => {
                depth = 1
            }
            Event::Start(e) if depth == 1 && e.name().as_ref() == b"Message" => {
                depth = 2;
                messages.push(String::new());
            }
            Event::End(e) if depth == 2 && e.name().as_ref() == b"Message" => depth = 1,
            Event::End(e) if depth == 1 && e.name().as_ref() == b"Response" => {
                depth = 0;
                closed = true;
            }
            Event::Text(t) if depth == 2 => {
                let raw = t.decode().map_err(|e| e.to_string())?;
                let text = quick_xml::escape::unescape(&raw).map_err(|e| e.to_string())?;
                messages.last_mut().expect("open").push_str(&text);
            }
            Event::GeneralRef(r) if depth == 2 => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let reference = format!("&{name};");
                let text = quick_xml::escape::unescape(&reference).map_err(|e| e.to_string())?;
                messages.last_mut().expect("open").push_str(&text);
            }
            Event::Eof if closed => return Ok(messages),
            other => return Err(format!("unexpected {other:?} in {twiml}")),
        }
    }
}

fn utf16_units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The characters XML 1.0 can carry.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn reply_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any_text(),
        3 => re("[ -~]{0,80}"),
        2 => Just("\n".to_owned()),
        1 => re("[\u{0}-\u{1f}]{1,4}"),
        1 => prop::sample::select(&["<", ">", "&", "&amp;", "]]>", "\"", "'", "&#0;", "😀", "\u{FFFE}", "\u{FFFF}"][..]).prop_map(str::to_owned),
        1 => (re("[a-z]"), 1..3000usize).prop_map(|(c, n)| c.repeat(n)),
        1 => (re("😀|é|x "), 1..1200usize).prop_map(|(c, n)| c.repeat(n)),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(cases(400))]

    #[test]
    fn twiml_is_well_formed_and_gives_the_text_back(text in reply_text()) {
        let reply = timed("Reply::text", || Reply::text(text.as_str()));
        let twiml = timed("to_twiml", || reply.to_twiml());
        let parsed = parse_twiml(&twiml).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&parsed, reply.messages());
        for message in &parsed {
            prop_assert!(!message.trim().is_empty(), "an empty <Message>");
            prop_assert!(utf16_units(message) <= twilio::twiml::MAX_MESSAGE_UNITS);
            prop_assert!(message.chars().all(xml_char));
        }
        // Splitting only ever drops whitespace between the pieces, and
        // cleaning only the characters XML cannot carry.
        let kept: String = text.chars().filter(|&c| xml_char(c) && !c.is_whitespace()).collect();
        let sent: String = parsed.concat().chars().filter(|c| !c.is_whitespace()).collect();
        prop_assert_eq!(sent, kept);
        prop_assert_eq!(reply.is_silence(), parsed.is_empty());
        prop_assert_eq!(twilio::twiml::parse_messages(&twiml), parsed);
    }
}

#[test]
fn silence_is_an_empty_response() {
    assert_eq!(parse_twiml(&Reply::silence().to_twiml()), Ok(Vec::new()));
}

// ---- The HTTP fuzz ----

/// Requests the fuzz sends; the issue asks for at least 10,000.
const FUZZ_REQUESTS: usize = 10_000;
/// Requests in flight at once.
const FUZZ_CONCURRENCY: usize = 24;

/// Who a request claims to come from.
#[derive(Debug, Clone)]
enum Sender {
    /// One of the fixture's members (active or not).
    Member(&'static str),
    /// A number not in the directory.
    Stranger(u32),
    /// Anything at all.
    Text(String),
}

/// Which MessageSid a request carries.
#[derive(Debug, Clone)]
enum Sid {
    /// Never sent before.
    Fresh,
    /// From a small pool, so redeliveries (from any sender) happen.
    Pooled(u8),
    Missing,
    Text(String),
}

#[derive(Debug, Clone)]
enum FuzzRequest {
    /// A Twilio-shaped form, signed as Twilio signs.
    Message {
        sender: Sender,
        body: String,
        sid: Sid,
        extra: Vec<(String, String)>,
        drop_fields: u8,
    },
    /// Random fields, signed.
    Fields(Vec<(String, String)>),
    /// Random bytes, signed over what they decode to when they decode.
    Raw(Vec<u8>),
    /// A form with a wrong or no signature.
    Unsigned {
        fields: Vec<(String, String)>,
        signature: Option<String>,
    },
    /// Move the server's clock on, so sessions expire and quotas refill
    /// between the follow-ups.
    Advance(u64),
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        6 => prop::sample::select(
            &[MEMBER, ASHA, INACTIVE, "+919845000002", "+919845000003", "+919845000004", "+919845000006"][..]
        )
        .prop_map(Sender::Member),
        2 => (0..5000u32).prop_map(Sender::Stranger),
        1 => phone_text().prop_map(Sender::Text),
    ]
}

fn sid() -> impl Strategy<Value = Sid> {
    prop_oneof![
        6 => Just(Sid::Fresh),
        3 => (0..40u8).prop_map(Sid::Pooled),
        1 => Just(Sid::Missing),
        1 => prop_oneof![any_text(), re("[ -~]{60,70}"), Just(String::new())].prop_map(Sid::Text),
    ]
}

fn follow_up() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "more",
            "1",
            "2",
            "5",
            "9",
            "contact",
            "what about Chennai?",
            "only cardiologists",
            "Find doctors in Bangalore",
            "lawyers in Mumbai",
            "hi",
            "thanks",
            "help",
            "the second one",
            "details of 4",
            "last",
            "in Koramangala",
        ][..],
    )
    .prop_map(str::to_owned)
}

/// Opting out and back in: rarer than the rest, and START more often than
/// STOP, so most phones are answered most of the time.
fn opt_word() -> impl Strategy<Value = String> {
    prop::sample::select(&["stop", "STOP", "start", "start", "unstop", "Start"][..])
        .prop_map(str::to_owned)
}

fn fuzz_request() -> impl Strategy<Value = FuzzRequest> {
    let body = prop_oneof![8 => follow_up(), 6 => message(), 2 => any_text(), 1 => opt_word()];
    prop_oneof![
        14 => (sender(), body, sid(), prop::collection::vec((field_name(), field_value()), 0..3), 0..20u8)
            .prop_map(|(sender, body, sid, extra, drop_fields)| FuzzRequest::Message {
                sender, body, sid, extra, drop_fields,
            }),
        2 => fields().prop_map(FuzzRequest::Fields),
        2 => prop_oneof![form_bytes(), prop::collection::vec(any::<u8>(), 0..600)]
            .prop_map(FuzzRequest::Raw),
        1 => (fields(), prop::option::of(any_text()))
            .prop_map(|(fields, signature)| FuzzRequest::Unsigned { fields, signature }),
        1 => (1..7200u64).prop_map(FuzzRequest::Advance),
    ]
}

/// The seed of the fuzz: `FAULTS_SEED`, or a fixed one.
fn fuzz_seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f0a1)
}

/// `count` HTTP requests, with the clock's advances between them.
fn fuzz_requests(seed: u64, count: usize) -> Vec<FuzzRequest> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(ProptestConfig::default(), rng);
    let strategy = fuzz_request();
    let mut requests = Vec::with_capacity(count + count / 10);
    let mut http = 0;
    while http < count {
        let request = strategy.new_tree(&mut runner).expect("a request").current();
        if !matches!(request, FuzzRequest::Advance(_)) {
            http += 1;
        }
        requests.push(request);
    }
    requests
}

/// The counts of what came back.
#[derive(Default)]
struct Tally {
    by_status: Mutex<std::collections::BTreeMap<u16, usize>>,
    /// 200s whose TwiML held at least one message.
    answered: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

/// Sends one fuzz request; what went wrong, if anything.
async fn send_fuzz(app: &TestApp, request: FuzzRequest, fresh: &AtomicU64, tally: &Tally) {
    let url = app.webhook_url();
    let (body, signature, what) = match request {
        FuzzRequest::Advance(secs) => {
            app.clock.advance(Duration::from_secs(secs));
            return;
        }
        FuzzRequest::Message {
            sender,
            body,
            sid,
            extra,
            drop_fields,
        } => {
            let from = match sender {
                Sender::Member(phone) => phone.to_owned(),
                Sender::Stranger(n) => format!("+9199{n:08}"),
                Sender::Text(text) => text,
            };
            let sid = match sid {
                Sid::Fresh => format!("SMfuzz{:026x}", fresh.fetch_add(1, Ordering::Relaxed)),
                Sid::Pooled(n) => format!("SMpool{n:026x}"),
                Sid::Missing => String::new(),
                Sid::Text(text) => text,
            };
            let mut fields = whatsapp_form(from.trim_start_matches("whatsapp:"), &body, &sid);
            if sid.is_empty() {
                fields.retain(|(n, _)| !n.contains("Sid") || n == "AccountSid");
            }
            // Now and then a field goes missing (From and Body too).
            if let Some(i) = usize::from(drop_fields).checked_sub(5)
                && i < fields.len()
            {
                fields.remove(i);
            }
            fields.extend(extra);
            let signature = app.sign(&url, &fields);
            (
                encode_form(&fields).into_bytes(),
                Some(signature),
                "message",
            )
        }
        FuzzRequest::Fields(fields) => {
            let signature = app.sign(&url, &fields);
            (encode_form(&fields).into_bytes(), Some(signature), "fields")
        }
        FuzzRequest::Raw(bytes) => {
            let signature = twilio::parse_form(&bytes)
                .ok()
                .map(|fields| app.sign(&url, &owned(fields)));
            (bytes, signature, "raw")
        }
        FuzzRequest::Unsigned { fields, signature } => {
            (encode_form(&fields).into_bytes(), signature, "unsigned")
        }
    };
    let mut request = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    if let Some(signature) = signature
        && let Ok(value) = reqwest::header::HeaderValue::from_str(&signature)
    {
        request = request.header("x-twilio-signature", value);
    }
    let failure = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            *tally.by_status.lock().unwrap().entry(status).or_default() += 1;
            let text = response.text().await.unwrap_or_default();
            if status == 200 {
                match parse_twiml(&text) {
                    Ok(messages) if !messages.is_empty() => {
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!("{what}: a 200 that is not TwiML: {e}")),
                }
            } else if status >= 500 || status == 408 {
                Some(format!("{what}: {status} {text}"))
            } else {
                None
            }
        }
        Err(e) => Some(format!("{what}: the request broke: {e}")),
    };
    if let Some(failure) = failure {
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        tally
            .failures
            .lock()
            .unwrap()
            .push(format!("{failure}\n  body: {shown}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_signed_requests_get_no_5xx() {
    let seed = fuzz_seed();
    eprintln!("HTTP fuzz: seed {seed} (set FAULTS_SEED to replay)");
    let generating = Instant::now();
    let requests = fuzz_requests(seed, FUZZ_REQUESTS);
    eprintln!(
        "HTTP fuzz: {} requests generated in {:?}",
        requests.len(),
        generating.elapsed()
    );
    let app = Arc::new(
        spawn_app_with(|c| {
            c.directory.members_csv = fixture("members.csv");
            c.limits.messages_per_hour = 1000;
            c.limits.searches_per_hour = 300;
        })
        .await,
    );
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(requests.into_iter()));
    let fresh = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..FUZZ_CONCURRENCY)
        .map(|_| {
            let (app, queue, fresh, tally) =
                (app.clone(), queue.clone(), fresh.clone(), tally.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some(request) = next else { break };
                    send_fuzz(&app, request, &fresh, &tally).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("no worker panicked");
    }
    let took = started.elapsed();
    let by_status = tally.by_status.lock().unwrap().clone();
    let sent: usize = by_status.values().sum();
    let answered = tally.answered.load(Ordering::Relaxed);
    eprintln!(
        "HTTP fuzz: {sent} requests in {took:?}: {by_status:?}, {answered} answered with a message"
    );
    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed (seed {seed}); the first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The fuzz reached every part of the flow, so "no 5xx" means something.
    assert_eq!(sent, FUZZ_REQUESTS, "every request had an answer");
    assert!(answered >= sent / 4, "{answered} answered of {sent}");
    for status in [200, 400, 403] {
        assert!(
            by_status.get(&status).copied().unwrap_or(0) >= 50,
            "{status}: {by_status:?}"
        );
    }
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    Arc::try_unwrap(app).ok().expect("one owner").stop().await;
}

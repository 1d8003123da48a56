//! The assistant's contract beyond the golden set: any text at all gets a
//! helpful reply (never a panic or a 5xx), only new searches spend the
//! search quota, the synonyms file extends the vocabulary (missing: built-
//! ins; malformed: the load fails naming file and line), directories
//! written with old names are found by new ones, extra columns are
//! searchable, and inactive members never appear.

use std::path::PathBuf;
use std::sync::Arc;

use crate::common::*;
use roster::assistant::{Assistant, Synonyms};
use roster::conversation::Intent;
use roster::conversation::Session;
use roster::directory::Directory;
use roster::http::{App, Options};
use roster::phone::Region;

const TTL_MS: u64 = 30 * 60 * 1000;

/// Texts no one should be able to break the assistant with.
fn hostile_texts() -> Vec<String> {
    vec![
        String::new(),
        " ".to_owned(),
        "\n\t\r".to_owned(),
        "a".repeat(4000),
        "doctors in bangalore ".repeat(190),
        "x".repeat(3999) + "é",
        "😀🎉🔥".to_owned(),
        "🙂".repeat(1000),
        "मुझे डॉक्टर चाहिए".to_owned(),
        "डॉक्टर".repeat(600),
        "எனக்கு மருத்துவர் வேண்டும்".to_owned(),
        "مرحبا، أحتاج طبيبا".to_owned(),
        "你好，我需要医生".to_owned(),
        "\u{0000}\u{0001}\u{0007}\u{001b}[31mred\u{001b}[0m".to_owned(),
        "\u{202E}sdrawkcab\u{202C}".to_owned(),
        "\u{200B}\u{200D}\u{FEFF}".to_owned(),
        "e\u{0301}\u{0301}\u{0301}\u{0301}".to_owned(),
        "0".to_owned(),
        "99".to_owned(),
        "-1".to_owned(),
        "1e9".to_owned(),
        "999999999999999999999999999999".to_owned(),
        "2 2 2 2".to_owned(),
        "more more more".to_owned(),
        "contact contact".to_owned(),
        "'".to_owned(),
        "''''".to_owned(),
        "'95".to_owned(),
        "batch of '".to_owned(),
        "'; DROP TABLE members; --".to_owned(),
        "<script>alert(1)</script>".to_owned(),
        "%s %n {} {{}} \\ null NaN".to_owned(),
        "in in in in in".to_owned(),
        "all cities".to_owned(),
        "my batchmates".to_owned(),
    ]
}

/// Whether a reply says what to do next.
fn helpful(reply: &str) -> bool {
    !reply.trim().is_empty()
        && ["Find", "Reply", "reply", "welcome", "HELP", "search"]
            .iter()
            .any(|hint| reply.contains(hint))
}

fn fixture_assistant() -> (Arc<Directory>, Assistant) {
    let directory = Arc::new(
        Directory::load(&fixture("members.csv"), Region::default()).expect("fixture directory"),
    );
    let assistant = Assistant::new(directory.clone(), "Test Network");
    (directory, assistant)
}

#[test]
fn any_text_gets_a_helpful_reply() {
    let (directory, assistant) = fixture_assistant();
    let member = directory
        .by_id("T007")
        .expect("Sanjay, who has a graduation year");
    let no_year = Directory::from_csv(
        "member_id,name,phone\nN1,No Year,+919800000001\n",
        Region::default(),
    )
    .unwrap();
    let stranger_to_years = &no_year.members()[0];
    for text in hostile_texts() {
        // In a fresh conversation and after a search, from a member with
        // and without a graduation year.
        for (sender, after_search) in [(member, false), (member, true), (stranger_to_years, true)] {
            let mut session = Session::new(sender, 0, TTL_MS);
            if after_search {
                let first = "doctors in Bengaluru";
                let u = assistant.understand(first, &session, sender);
                let a = assistant.answer(&u, sender);
                session.record(a.entry(first, 0, &u), u.runs_search(), 10, TTL_MS);
            }
            let understanding = assistant.understand(&text, &session, sender);
            let answer = assistant.answer(&understanding, sender);
            let shown: String = text.chars().take(40).collect();
            assert!(
                helpful(&answer.text),
                "{shown:?} (after a search: {after_search}) got {:?}",
                answer.text
            );
            assert!(
                answer.text.chars().count() < 4000,
                "{shown:?}: a short reply"
            );
        }
    }
}

#[tokio::test]
async fn any_text_gets_a_200_through_the_webhook() {
    let app = spawn_app_with(|c| {
        c.limits.messages_per_hour = 10_000;
        c.limits.searches_per_hour = 10_000;
    })
    .await;
    for text in hostile_texts() {
        let (status, twiml) = app.send_text(MEMBER, &text).await;
        let shown: String = text.chars().take(40).collect();
        assert_eq!(status, 200, "{shown:?}: {twiml}");
        let reply = messages(&twiml).join("\n");
        assert!(helpful(&reply), "{shown:?} got {reply:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn only_new_searches_spend_the_search_quota() {
    let app = spawn_app_with(|c| c.limits.searches_per_hour = 2).await;
    let say = |body: &'static str| {
        let app = &app;
        async move { messages(&app.send_text(MEMBER, body).await.1).join("\n") }
    };
    assert!(
        say("doctors in Bengaluru")
            .await
            .starts_with("Found 3 doctors")
    );
    for follow_up in [
        "more",
        "2",
        "contact",
        "the first one",
        "hi",
        "help",
        "thanks",
        "blah",
    ] {
        let reply = say(follow_up).await;
        assert!(!reply.contains("reached the limit"), "{follow_up}: {reply}");
    }
    assert!(
        say("what about Chennai?").await.contains("Meera Nair"),
        "a refinement is the 2nd search"
    );
    let refused = say("lawyers in Mumbai").await;
    assert!(
        refused.contains("limit of 2 searches per hour"),
        "{refused}"
    );
    app.stop().await;
}

#[test]
fn runs_search_is_true_for_searches_and_refinements_only() {
    let (directory, assistant) = fixture_assistant();
    let member = directory.by_id("T007").unwrap();
    let mut session = Session::new(member, 0, TTL_MS);
    for (text, intent, searches) in [
        ("doctors in Bangalore", Intent::Search, true),
        ("more", Intent::More, false),
        ("1", Intent::Details, false),
        ("contact", Intent::Contact, false),
        ("what about Chennai?", Intent::Refine, true),
        ("hello", Intent::Greeting, false),
        ("help", Intent::Help, false),
        ("thank you", Intent::Thanks, false),
        ("qwertyuiop", Intent::Unknown, false),
    ] {
        let understanding = assistant.understand(text, &session, member);
        assert_eq!(understanding.intent, intent, "{text}");
        assert_eq!(understanding.runs_search(), searches, "{text}");
        let answer = assistant.answer(&understanding, member);
        session.record(answer.entry(text, 0, &understanding), searches, 10, TTL_MS);
    }
}

fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_missing_synonyms_file_means_the_built_ins() {
    let app =
        spawn_app_with(|c| c.directory.synonyms_csv = PathBuf::from("/nonexistent/synonyms.csv"))
            .await;
    let (status, twiml) = app.send_text(MEMBER, "physicians in Bangalore").await;
    assert_eq!(status, 200);
    assert!(messages(&twiml)[0].starts_with("Found 3 doctors in Bengaluru"));
    app.stop().await;
}

#[test]
fn a_malformed_synonyms_file_fails_the_load_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let synonyms = temp_file(
        &dir,
        "synonyms.csv",
        "# extra words\nterm,means\nheart surgeon,profesion:Doctor\n",
    );
    let mut config = test_config(dir.path());
    config.directory.synonyms_csv = synonyms.clone();
    let error = match App::build(
        config,
        Options {
            dev: false,
            clock: roster::clock::ManualClock::starting_now(),
        },
    ) {
        Ok(_) => panic!("a malformed synonyms file must stop the load"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&synonyms.display().to_string()), "{error}");
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("unknown field `profesion`"), "{error}");
}

#[tokio::test]
async fn operators_extend_the_vocabulary_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let synonyms = temp_file(
        &dir,
        "synonyms.csv",
        "term,means\nheart surgeon,profession:Doctor+specialty:Cardiology\nkoru,area:Koramangala\nphir se,intent:more\n",
    );
    let app = spawn_app_with(|c| c.directory.synonyms_csv = synonyms).await;
    let (_, twiml) = app.send_text(MEMBER, "heart surgeons in koru").await;
    let text = messages(&twiml).join("\n");
    assert!(
        text.starts_with("Found 1 doctor (Cardiology) in Koramangala, Bengaluru"),
        "{text}"
    );
    assert!(text.contains("*Asha Rao*"), "{text}");
    let (_, twiml) = app.send_text(MEMBER, "doctors in Bengaluru").await;
    assert!(messages(&twiml)[0].starts_with("Found 3"));
    let (_, twiml) = app.send_text(MEMBER, "phir se").await;
    assert!(
        messages(&twiml)[0].starts_with("That's all"),
        "an operator's intent word"
    );
    app.stop().await;
}

#[test]
fn a_directory_with_old_names_is_found_by_new_ones() {
    let csv = "name,phone,profession,city,languages,alternate phone\n\
        Old Style,+919800000001,Physician,Bangalore,Tulu,+919811111111\n\
        New Style,+919800000002,Doctor,Bengaluru,Kannada,\n\
        Lawyer Elsewhere,+919800000003,Advocate,Madras,Tulu,\n";
    let directory = Arc::new(Directory::from_csv(csv, Region::default()).unwrap());
    let assistant = Assistant::new(directory.clone(), "Test Network");
    let member = &directory.members()[1];
    let session = Session::new(member, 0, TTL_MS);
    let ask = |text: &str| {
        let understanding = assistant.understand(text, &session, member);
        assistant.answer(&understanding, member)
    };
    let doctors = ask("doctors in Bengaluru");
    assert_eq!(doctors.result_count, 2, "{}", doctors.text);
    let lawyers = ask("lawyers in Chennai");
    assert_eq!(lawyers.result_count, 1, "{}", lawyers.text);
    // Extra columns: searchable as text, shown in details, except contact ones.
    let tulu = ask("who speaks Tulu");
    assert_eq!(tulu.result_count, 2, "{}", tulu.text);
    let details = ask("tell me about Old Style");
    assert!(details.text.contains("Languages: Tulu"), "{}", details.text);
    assert!(!details.text.contains("9811111111"), "{}", details.text);
    assert!(details.text.contains("+919800000001"), "shares by default");
}

#[test]
fn inactive_members_never_appear() {
    let (directory, assistant) = fixture_assistant();
    let member = directory.by_id("T007").unwrap();
    let session = Session::new(member, 0, TTL_MS);
    for text in [
        "dermatologists in Bangalore",
        "Find Ravi Kumar",
        "Ravi",
        "who knows lasers",
        "Skin First",
    ] {
        let understanding = assistant.understand(text, &session, member);
        let answer = assistant.answer(&understanding, member);
        // The reply may repeat a name the member wrote ("I couldn't find any member named
        // Ravi Kumar"); it never lists or describes the inactive member.
        assert!(
            !answer.text.contains("*Ravi Kumar*") && !answer.text.contains("Indiranagar"),
            "{text}: {}",
            answer.text
        );
        assert!(!answer.shown_ids.contains(&"T005".to_owned()), "{text}");
    }
}

#[test]
fn the_built_in_synonyms_load() {
    assert!(Synonyms::builtin().len() > 100);
    let shipped =
        Synonyms::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/synonyms.csv"))
            .expect("data/synonyms.csv is valid");
    assert!(!shipped.is_empty());
}

#[test]
fn a_session_stays_small_however_long_and_wordy_the_messages() {
    let (directory, assistant) = fixture_assistant();
    let member = directory.by_id("T007").unwrap();
    let mut session = Session::new(member, 0, TTL_MS);
    // Words shaped like roles that no directory knows: each becomes a free
    // keyword of the search, and a refinement carries them all forward.
    let letter = |n: usize| char::from(b'a' + (n % 26) as u8);
    let role_words = |round: usize| -> String {
        (0..40)
            .map(|i| format!("zq{}{}{}ker ", letter(round), letter(i / 26), letter(i)))
            .collect()
    };
    let mut longest_keywords = 0;
    for round in 0..12 {
        let text = format!(
            "find {}in Bangalore {}",
            role_words(round),
            "and ".repeat(2_000)
        );
        let understanding = assistant.understand(&text, &session, member);
        let answer = assistant.answer(&understanding, member);
        let entry = answer.entry(&text, 0, &understanding);
        assert!(entry.query.chars().count() <= 500, "round {round}");
        longest_keywords = longest_keywords.max(entry.entities.keywords.len());
        session.record(entry, understanding.runs_search(), 10, TTL_MS);
    }
    assert!(longest_keywords > 0, "the words were taken as keywords");
    assert!(longest_keywords <= 16, "{longest_keywords} keywords");
    let stored = roster::store::codec::encode(roster::store::codec::SESSION_V1, &session);
    assert!(stored.len() < 32 * 1024, "{} bytes", stored.len());
}

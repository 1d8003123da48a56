//! Remembered replies are keyed by phone and MessageSid: a redelivery gets
//! the reply it was sent, and a MessageSid replayed from another phone (even
//! with a valid signature) never gets someone else's reply.

use crate::common::*;

#[tokio::test]
async fn a_message_sid_replayed_from_another_phone_gets_its_own_answer() {
    let app = spawn_app().await;
    let sid = app.new_sid();
    let search = whatsapp_form(ASHA, "Find doctors in Bangalore", &sid);
    let first = app.post_fields(&search).await;
    assert_eq!(first.status(), 200);
    let asha_reply = first.text().await.unwrap();
    assert!(
        messages(&asha_reply)
            .join("")
            .contains("doctors in Bengaluru"),
        "{asha_reply}"
    );

    // Another member, same MessageSid, validly signed.
    let replay = whatsapp_form(MEMBER, "hello", &sid);
    let response = app.post_fields(&replay).await;
    assert_eq!(response.status(), 200);
    let member_reply = response.text().await.unwrap();
    assert_ne!(member_reply, asha_reply, "another phone's reply came back");
    assert!(
        !member_reply.contains("Vikram Shetty"),
        "members found for someone else: {member_reply}"
    );
    assert!(!messages(&member_reply).is_empty(), "an answer of its own");

    // A stranger with the same MessageSid gets the stranger's refusal.
    let stranger = whatsapp_form(STRANGER, "Find doctors in Bangalore", &sid);
    let response = app.post_fields(&stranger).await;
    assert_eq!(response.status(), 200);
    let refusal = response.text().await.unwrap();
    assert!(
        messages(&refusal).join("").contains("isn't registered"),
        "{refusal}"
    );

    // The first phone's redelivery still gets its own reply, and each
    // phone's redelivery gets the reply it was sent.
    let again = app.post_fields(&search).await.text().await.unwrap();
    assert_eq!(again, asha_reply);
    let member_again = app.post_fields(&replay).await.text().await.unwrap();
    assert_eq!(member_again, member_reply);
    app.stop().await;
}

#[tokio::test]
async fn a_reply_remembered_without_its_phone_answers_no_one() {
    // Format-1 records (before replies named their phone) are moved into
    // the record of the phone whose session vouches for them when the data
    // dir is opened; one no session vouches for goes to no one, and a
    // webhook never gets it.
    use roster::clock::ManualClock;
    use roster::phone::{PhoneNumber, Region};
    use roster::store::{Store, codec};
    #[derive(serde::Serialize)]
    struct SeenReply {
        twiml: String,
        expires_at_ms: u64,
    }
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let now = 1_700_000_000_000u64;
    let clock = ManualClock::new(now);
    {
        let db = roster::store::open(&config.storage).unwrap();
        let tree = db.open_tree("sessions").unwrap();
        let reply = SeenReply {
            twiml: "<Response>someone else's</Response>".to_owned(),
            expires_at_ms: now + 3_600_000,
        };
        tree.insert(b"mSMold", codec::encode(codec::SEEN_V1, &reply))
            .unwrap();
        db.flush().unwrap();
    }
    let db = roster::store::open(&config.storage).unwrap();
    let store = Store::open(&db, &config, clock).unwrap();
    for phone in [ASHA, MEMBER, STRANGER] {
        let phone = PhoneNumber::parse(phone, Region::default()).unwrap();
        let turn = store.turn(phone).await.unwrap();
        assert_eq!(
            turn.remembered("SMold").unwrap(),
            None,
            "an old record went to {}",
            phone.masked()
        );
    }
}

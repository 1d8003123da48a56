//! The per-message steps of the webhook flow, one by one: signature
//! verification, form parsing, phone parsing, member lookup and TwiML
//! rendering. (Rate-limit checks: `benches/limits.rs`; session work:
//! `benches/session.rs`; the assistant: `benches/assistant.rs`.)

use criterion::{Criterion, criterion_group, criterion_main};
use roster::directory::{Directory, synthetic};
use roster::phone::{PhoneNumber, Region};
use roster::twilio::{Inbound, Reply, SignatureVerifier, parse_form};

const FORM: &str = "SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&ProfileName=Asha+K&MessageType=text&SmsSid=SM0123456789abcdef0123456789abcdef&WaId=919100000042&SmsStatus=received&Body=Find+doctors+in+Bangalore&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B919100000042&ApiVersion=2010-04-01";
const URL: &str = "https://roster.example.org/whatsapp/webhook";

fn flow(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow");
    let fields = parse_form(FORM.as_bytes()).unwrap();
    let verifier = SignatureVerifier::new("12345678901234567890123456789012");
    let signature = verifier.sign(URL, &fields);

    group.bench_function("form parse", |b| {
        b.iter(|| parse_form(FORM.as_bytes()).unwrap())
    });
    group.bench_function("signature verify", |b| {
        b.iter(|| assert!(verifier.verify(URL, &fields, &signature)))
    });
    group.bench_function("inbound (From → PhoneNumber, remembered)", |b| {
        b.iter(|| Inbound::from_form(&fields, Region::default()).unwrap())
    });
    let mut n = 0u64;
    group.bench_function("phone parse, first sight (libphonenumber)", |b| {
        b.iter(|| {
            n += 1;
            // A fresh valid number each time, so the memo never answers.
            PhoneNumber::parse(&format!("+9198{:08}", n % 100_000_000), Region::default())
        })
    });
    group.bench_function("phone parse, national writing", |b| {
        b.iter(|| PhoneNumber::parse("098409 30854", Region::default()).unwrap())
    });

    let directory =
        Directory::from_csv(&synthetic::synthetic_csv(100_000, 1), Region::default()).unwrap();
    let phones: Vec<PhoneNumber> = (0..1000)
        .map(|i| {
            PhoneNumber::parse(&synthetic::synthetic_phone(i * 97), Region::default()).unwrap()
        })
        .collect();
    let mut i = 0;
    group.bench_function("member lookup (100k members)", |b| {
        b.iter(|| {
            i += 1;
            directory.active_member(&phones[i % phones.len()]).is_some()
        })
    });

    let reply_text = (1..=5)
        .map(|k| format!("{k}. *Member {k} <& Co>*, Doctor · Cardiology, Kaveri Hospital, Koramangala, Bengaluru"))
        .collect::<Vec<_>>()
        .join("\n");
    group.bench_function("TwiML render (5 results)", |b| {
        b.iter(|| Reply::text(reply_text.as_str()).to_twiml())
    });
    group.finish();
}

criterion_group!(benches, flow);
criterion_main!(benches);

//! `PhoneNumber::parse` over the writings operators and Twilio use.

use roster::phone::{PhoneError, PhoneNumber, Region};

fn region(code: &str) -> Region {
    code.parse().unwrap()
}

#[test]
fn common_writings_normalise_to_e164() {
    let india = region("IN");
    let table = [
        ("+919840930854", "+919840930854"),
        ("+91 98409 30854", "+919840930854"),
        ("whatsapp:+919840930854", "+919840930854"),
        ("WhatsApp:+91 98409 30854", "+919840930854"),
        ("0091-98409-30854", "+919840930854"),
        ("919840930854", "+919840930854"),
        ("9840930854", "+919840930854"),
        ("098409 30854", "+919840930854"),
        ("(+91) 98409-30854", "+919840930854"),
        ("9150343508", "+919150343508"),
        (" +1 (415) 523-8886 ", "+14155238886"),
        ("+44 20 7946 0958", "+442079460958"),
        ("whatsapp:+14155238886", "+14155238886"),
    ];
    for (input, expected) in table {
        let phone = PhoneNumber::parse(input, india).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(phone.e164(), expected, "{input}");
    }
}

#[test]
fn the_default_region_applies_to_national_numbers() {
    let us = region("us");
    assert_eq!(
        PhoneNumber::parse("(415) 523-8886", us).unwrap().e164(),
        "+14155238886"
    );
    assert_eq!(
        PhoneNumber::parse("+919840930854", us).unwrap().e164(),
        "+919840930854"
    );
}

#[test]
fn non_numbers_are_rejected_with_a_reason() {
    let india = region("IN");
    assert_eq!(PhoneNumber::parse("", india), Err(PhoneError::Empty));
    assert_eq!(
        PhoneNumber::parse("whatsapp:", india),
        Err(PhoneError::Empty)
    );
    assert!(matches!(
        PhoneNumber::parse("call me", india),
        Err(PhoneError::NotANumber(_))
    ));
    assert!(matches!(
        PhoneNumber::parse("1-800-FLOWERS", india),
        Err(PhoneError::NotANumber(_))
    ));
    for invalid in [
        "+12",
        "12345",
        "+999999999999999",
        "+91 12345",
        "00000000000",
        "+",
    ] {
        assert!(
            matches!(
                PhoneNumber::parse(invalid, india),
                Err(PhoneError::Invalid(_))
            ),
            "{invalid} should be invalid: {:?}",
            PhoneNumber::parse(invalid, india)
        );
    }
    let long = "9".repeat(500);
    let message = PhoneNumber::parse(&long, india).unwrap_err().to_string();
    assert!(
        message.len() < 120,
        "errors echo a shortened input: {message}"
    );
}

#[test]
fn masking_hides_the_middle_and_debug_is_masked() {
    let phone = PhoneNumber::parse("+91 98409 30854", region("IN")).unwrap();
    assert_eq!(phone.masked(), "+91******0854");
    assert_eq!(format!("{phone:?}"), "PhoneNumber(+91******0854)");
    assert_eq!(phone.to_string(), "+919840930854");
    assert_eq!(phone.whatsapp_address(), "whatsapp:+919840930854");
}

#[test]
fn regions_parse_and_explain_errors() {
    assert_eq!(region("in").code(), "IN");
    let error = "XX1".parse::<Region>().unwrap_err();
    assert!(error.contains("ISO 3166-1"), "{error}");
}

//! Payloads and S3 URIs: what parses prints back to text that parses to the same
//! value, and a Payload that validates stays valid.
#![no_main]

use baton::payload::{Payload, S3Location};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(payload) = Payload::parse(text) {
        let printed = payload.to_json();
        let again = Payload::parse(&printed).expect("a printed Payload parses");
        assert_eq!(again, payload);
        assert_eq!(again.to_json(), printed, "printing is stable");
        assert_eq!(payload.json_chars(), baton::limits::aws_len(&printed));
    }
    if let Ok(location) = S3Location::parse(text) {
        assert!(!location.bucket.is_empty());
        let again = S3Location::parse(&location.uri()).expect("a printed URI parses");
        assert_eq!(again, location);
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
        && let Ok(Some(payload)) = Payload::from_value(&value)
    {
        payload.validate().expect("from_value validates");
        assert_eq!(Payload::parse(&payload.to_json()).expect("parses"), payload);
    }
});

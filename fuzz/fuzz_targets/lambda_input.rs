//! prepare-input's and offload-output's state input, any JSON: no panic; what is
//! accepted has a valid execution layout and a valid Payload.
#![no_main]

use baton::handoff::{HandoffConfig, step_or_default};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = HandoffConfig::for_bucket("bucket");
    if let Ok((request, layout, input)) = prepare_input::parse(value.clone(), &config) {
        assert!(layout.key("input").contains(&request.execution));
        let step = step_or_default(request.step.as_deref());
        assert!(layout.output_uri(step).starts_with("s3://bucket/"));
        assert!(
            !step.contains('/'),
            "a step never leaves the execution's prefix"
        );
        match input {
            prepare_input::Input::Object(location) => assert!(!location.key.is_empty()),
            prepare_input::Input::Pointer(pointer) => pointer.validate().expect("valid pointer"),
            prepare_input::Input::Inline(payload) => payload.validate().expect("valid payload"),
            prepare_input::Input::MapResults(results) => {
                // A Distributed Map's results: a bucket and a key or prefix, never empty.
                let named = match &results {
                    baton::map_results::MapResults::Manifest { bucket, key } => {
                        !bucket.is_empty() && !key.is_empty()
                    }
                    baton::map_results::MapResults::Prefix { bucket, .. } => !bucket.is_empty(),
                };
                assert!(named, "{results:?}");
            }
            prepare_input::Input::Batch(inputs) => {
                // A batch: objects and Payloads only, never a nested manifest.
                assert!(!inputs.is_empty());
                assert!(inputs.iter().all(|i| !matches!(
                    i,
                    prepare_input::Input::Batch(_)
                        | prepare_input::Input::Items(_)
                        | prepare_input::Input::MapResults(_)
                )));
            }
            prepare_input::Input::Items(items) => {
                // A fan-in: whatever it gathers is a valid, flat manifest.
                if let Ok(gathered) = baton::fanin::gather(&items, 10.0) {
                    gathered.manifest.validate().expect("a valid manifest");
                    assert!(gathered.failed.len() <= items.len());
                }
            }
        }
    }
    if let Ok((request, layout, payload)) = offload_output::parse(value, &config) {
        let step = step_or_default(request.step.as_deref());
        assert!(
            !step.contains('/'),
            "a step never leaves the execution's prefix"
        );
        assert!(
            layout
                .key(&format!("{step}/offloaded"))
                .contains(&request.execution)
        );
        payload.validate().expect("valid payload");
        let printed = payload.to_json();
        assert_eq!(baton::Payload::parse(&printed).expect("parses"), payload);
    }
});

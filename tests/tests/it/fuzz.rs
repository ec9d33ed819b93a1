//! The fuzz targets (`reclaim_tests::fuzz`) as bounded property tests, so every run of the
//! test command exercises them: arbitrary bytes, bytes built around valid inputs (rows, rules,
//! tokens, manifests) with hostile characters spliced in, and every kept regression input
//! under `tests/fuzz/regressions/<target>/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use reclaim_tests::fuzz::TARGETS;
use std::path::Path;

/// Characters that have broken text handling somewhere: line breaks, NUL, escape, C1,
/// direction overrides, CSV formula starts, quotes, separators, and a 4-byte character.
const HOSTILE: &[&str] = &[
    "\n", "\r", "\r\n", "\0", "\u{1b}", "\u{85}", "\u{2028}", "\u{202E}", "\u{2066}", "=", "+",
    "-", "@", "\t", "\"", ",", ";", "<", ">", "%", "%0A", "%00", "&", "'", "😀", "\u{FEFF}",
];

/// Valid inputs for each target, to splice hostile characters into.
fn seeds(target: &str) -> &'static [&'static str] {
    match target {
        "csv_candidates" => &[
            "publisher,product,device,justification,rule,user_id,user_email\n\
             Adobe,Acrobat,LAPTOP-1,unused,notify,uma,uma@example.com\n",
        ],
        "usage_rows" => &[
            "user_id,user_name,user_email,publisher,product,device,last_used_at\n\
             uma,Uma,uma@example.com,Adobe,Acrobat,LAPTOP-1,2026-01-01\n",
        ],
        "json_candidates" => &[
            r#"{"candidates":[{"id":"inv-1","publisher":"Adobe","product":"Acrobat","device":"L-1","justification":"unused","rule":"notify","user_id":"uma","user_name":"Uma","user_email":"uma@example.com"}]}"#,
        ],
        "rule_json" => &[
            r#"{"id":"r1","name":"Unused Acrobat","assignment_group":"desktop","software":[{"publisher":"Adobe","product":"Acrobat"}],"criteria":{"kind":"last-used-before","days":30}}"#,
        ],
        "plugin_manifest" => &[
            "id = \"m365-revoke\"\ncomponent = \"plugin.wasm\"\ndeadline_ms = 2000\nmemory_mb = 16\nallowed_outbound_hosts = [\"https://graph.microsoft.com\"]\nsecrets = [\"client-secret\"]\n[config]\ntenant = \"contoso\"\n",
        ],
        "form_body" => &["csrf=abc&ids=c-1&ids=c-2&text=hello%20world&next=%2Fui"],
        _ => &["Acrobat\u{ff}instructions\u{ff}tech"],
    }
}

fn splice(seed: &str, edits: &[(usize, usize)]) -> Vec<u8> {
    let mut s = seed.to_string();
    for (at, which) in edits {
        let mut i = at % (s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.insert_str(i, HOSTILE[which % HOSTILE.len()]);
    }
    s.into_bytes()
}

fn run(name: &str, data: &[u8]) {
    let (_, target) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    target(data);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_break_no_invariant(
        which in 0..TARGETS.len(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (name, _) = TARGETS[which];
        run(name, &data);
    }

    #[test]
    fn hostile_characters_in_valid_inputs_break_no_invariant(
        which in 0..TARGETS.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<usize>()), 1..6),
    ) {
        let (name, _) = TARGETS[which];
        for seed in seeds(name) {
            run(name, &splice(seed, &edits));
        }
    }
}

#[test]
fn every_valid_seed_passes_its_target() {
    for (name, target) in TARGETS {
        for seed in seeds(name) {
            target(seed.as_bytes());
        }
    }
}

#[test]
fn kept_regression_inputs_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut ran = 0;
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            target(&std::fs::read(&path).unwrap());
            ran += 1;
        }
    }
    assert!(ran > 0, "no regression inputs under {}", dir.display());
}

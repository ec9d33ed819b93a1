//! Fuzz targets: every parser that reads what people, files and vendors send, given arbitrary
//! bytes. Each target panics only when an invariant breaks (a forged token accepted, a stored
//! name that could break a mail line, a parser crash), so the same functions serve
//! `cargo fuzz` (the `fuzz/` directory, nightly) and the bounded property tests the test
//! command runs (`tests/tests/it/fuzz.rs`), and a crash found by either is kept as a regression
//! input under `tests/fuzz/regressions/<target>/`.

use chrono::{TimeZone, Utc};
use reclaim_api::http::ui::form::FormFields;
use reclaim_api::http::ui::session::SessionKey;
use reclaim_api::HmacLinkSigner;
use reclaim_workflow::intake::{self, FieldError, Known};
use reclaim_workflow::ports::{LinkAction, LinkClaims, LinkSigner};
use reclaim_workflow::text;
use reclaim_workflow::{apply, Actor, Event, Rule, State};

/// One fuzz target: bytes in, a panic only when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz` and the regression inputs name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("link_token", link_token),
    ("session_cookie", session_cookie),
    ("form_body", form_body),
    ("csv_candidates", csv_candidates),
    ("json_candidates", json_candidates),
    ("usage_rows", usage_rows),
    ("rule_json", rule_json),
    ("plugin_manifest", plugin_manifest),
    ("plugin_answer", plugin_answer),
];

fn now() -> reclaim_workflow::Timestamp {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn claims() -> LinkClaims {
    LinkClaims {
        candidate_id: "c-1".into(),
        user_id: "uma".into(),
        action: LinkAction::Keep,
        version: 3,
        expires_at: now() + chrono::Duration::days(14),
    }
}

/// Flips the bytes of `s` that `data` points at (position, xor pairs).
fn mutate(s: &str, data: &[u8]) -> String {
    let mut bytes = s.as_bytes().to_vec();
    for pair in data.chunks(2) {
        if let ([at, x], false) = (pair, bytes.is_empty()) {
            let i = usize::from(*at) % bytes.len();
            bytes[i] ^= *x;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A link token: arbitrary text is never accepted, and a real token changed anywhere either
/// fails or still says exactly what was signed.
pub fn link_token(data: &[u8]) {
    let signer = HmacLinkSigner::new([7u8; 32]).expect("a 32-byte key is valid");
    let token = signer.sign(&claims());
    let text = String::from_utf8_lossy(data);
    // A fuzzer that learns comparisons can rebuild the one token this key signed: only that
    // one may pass.
    match signer.verify(&text, now()) {
        Ok(c) if text == token && c == claims() => {}
        Ok(c) => panic!("an unsigned token was accepted: {text:?} → {c:?}"),
        Err(_) => {}
    }
    let changed = mutate(&token, data);
    match signer.verify(&changed, now()) {
        Ok(c) => assert!(
            changed == token && c == claims(),
            "a changed token was accepted: {changed:?} → {c:?}"
        ),
        Err(_) => assert_ne!(changed, token, "the signed token was refused"),
    }
}

/// A session cookie: only what the key sealed opens, and a changed seal does not.
pub fn session_cookie(data: &[u8]) {
    let key = SessionKey::new(&[9u8; 32]).expect("a 32-byte key is valid");
    let sealed = key.seal("session-secret-0001");
    let text = String::from_utf8_lossy(data);
    // As for link tokens: only the one value this key sealed may open.
    if text != sealed {
        assert_eq!(key.open(&text), None, "an unsealed cookie opened: {text:?}");
    }
    let changed = mutate(&sealed, data);
    match key.open(&changed) {
        Some(secret) => assert!(
            changed == sealed && secret == "session-secret-0001",
            "a changed cookie opened: {changed:?}"
        ),
        None => assert_ne!(changed, sealed, "the sealed cookie did not open"),
    }
    assert!(
        !key.check_form_token("form", "nonce", &text) || text == key.form_token("form", "nonce")
    );
}

/// A form body: parsed or refused with a message, never a crash; what parses is UTF-8.
pub fn form_body(data: &[u8]) {
    if let Ok(f) = FormFields::parse(data) {
        let _ = f.get("csrf");
        let _ = f.all("ids");
    }
}

fn rules() -> Vec<Rule> {
    let rule = |id: &str, group: &str| -> Rule {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "assignment_group": group,
            "days_before_auto_reclamation": 14
        }))
        .expect("a valid rule")
    };
    vec![rule("notify", "desktop"), rule("silent", "desktop")]
}

/// What an accepted candidate row may hold: one-line names, one mailbox, an id that is not a
/// number's shape.
fn check_draft(d: &intake::Draft) {
    let one = |what: &str, v: &str| {
        assert!(
            text::single_line(v).is_ok(),
            "{what} {v:?} was accepted with a character no name may hold"
        );
    };
    one("publisher", &d.software.publisher);
    one("product", &d.software.product);
    for v in [
        &d.software.version,
        &d.software.sku,
        &d.software.subscription_id,
        &d.device,
    ]
    .into_iter()
    .flatten()
    {
        one("field", v);
    }
    if let Some(u) = &d.user {
        assert_eq!(u.check_text(), Ok(()), "user {u:?} was accepted");
    }
    if let Some(id) = &d.id {
        assert!(
            !intake::looks_like_number(id),
            "id {id:?} takes a number's shape"
        );
    }
}

fn check_rows(rows: &[intake::Row]) {
    let groups = vec!["desktop".to_string()];
    let rules = rules();
    let known = Known {
        rules: &rules,
        groups: &groups,
        price_period: reclaim_workflow::PricePeriod::Yearly,
    };
    for (_, row) in rows {
        match intake::parse_row(row, known) {
            Ok(d) => check_draft(&d),
            Err(errors) => check_errors(&errors),
        }
    }
}

fn check_errors(errors: &[FieldError]) {
    assert!(!errors.is_empty(), "a refusal names no problem");
}

/// CSV candidate rows: read and checked like `reclaim candidates import`.
pub fn csv_candidates(data: &[u8]) {
    if let Ok(rows) = reclaim_api::rows::csv_rows(data) {
        check_rows(&rows);
    }
}

/// JSON candidate rows, like `POST /api/v1/candidates`.
pub fn json_candidates(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let v = match v {
        serde_json::Value::Object(mut o) => o.remove("candidates").unwrap_or_default(),
        other => other,
    };
    match intake::rows_from_json(&v) {
        Ok(rows) => check_rows(&rows),
        Err(errors) => assert!(!errors.is_empty(), "a refusal names no row"),
    }
}

/// Usage rows from CSV: an accepted record's names are one line each.
pub fn usage_rows(data: &[u8]) {
    let Ok(rows) = reclaim_api::rows::csv_rows(data) else {
        return;
    };
    for (_, row) in &rows {
        match reclaim_workflow::usage::parse_usage_row(row) {
            Ok(record) => {
                assert_eq!(record.user.check_text(), Ok(()), "{record:?}");
                let sw = &record.software;
                let names = [&sw.publisher, &sw.product]
                    .into_iter()
                    .chain(record.user_groups.iter())
                    .chain(record.device.iter())
                    .chain(sw.version.iter())
                    .chain(sw.sku.iter())
                    .chain(sw.subscription_id.iter());
                for v in names {
                    assert!(
                        text::single_line(v).is_ok(),
                        "usage record accepted with {v:?}"
                    );
                }
            }
            Err(errors) => check_errors(&errors),
        }
    }
}

fn every_string(v: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| every_string(i, f)),
        serde_json::Value::Object(m) => m.values().for_each(|i| every_string(i, f)),
        _ => {}
    }
}

/// Rule JSON, like `PUT /api/v1/rules/{id}`: a rule that passes both checks holds only
/// one-line text.
pub fn rule_json(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(rule) = reclaim_workflow::rules::parse_rule(&v) else {
        return;
    };
    let groups = vec![reclaim_workflow::Group {
        id: "desktop".into(),
        name: "Desktop".into(),
        email: None,
        members: vec![],
    }];
    if reclaim_workflow::rules::check_rule(&rule, &groups).is_empty() {
        let shown = serde_json::to_value(&rule).unwrap_or_default();
        every_string(&shown, &mut |s| {
            assert!(text::single_line(s).is_ok(), "rule accepted with {s:?}")
        });
    }
}

/// A plugin manifest (`reclaim-plugin.toml`): parsed or refused with a message.
pub fn plugin_manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = reclaim_host::manifest::Manifest::parse(text);
    }
}

/// Splits bytes into strings at 0xFF (lossy UTF-8), for structured answers.
fn strings(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0xFF)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A plugin's answer as it crosses the WIT boundary (any strings, any numbers), turned into
/// the core's result and applied: the candidate, its history and its effects hold no NUL,
/// control or direction characters, and one-line fields no line breaks.
pub fn plugin_answer(data: &[u8]) {
    use reclaim_host::{ManualTask, Outcome, PluginError};
    let (kind, rest) = data.split_first().map_or((0, &[][..]), |(k, r)| (*k, r));
    let s = strings(rest);
    let at = |i: usize| s.get(i).cloned().unwrap_or_default();
    let number = rest
        .iter()
        .take(4)
        .fold(0u32, |n, b| n.wrapping_mul(256).wrapping_add(u32::from(*b)));
    let answer = match kind % 7 {
        0 => Ok(Outcome::Removed(at(0))),
        1 => Ok(Outcome::AlreadyAbsent),
        2 => Ok(Outcome::ManualTask(ManualTask {
            title: at(0),
            instructions: at(1),
            assignee_hint: s.get(2).cloned(),
        })),
        3 => Ok(Outcome::Pending(number)),
        4 => Err(PluginError::Transient {
            message: at(0),
            retry_after_secs: Some(number),
        }),
        5 => Err(PluginError::Permanent { message: at(0) }),
        _ => Err(PluginError::Misconfigured { message: at(0) }),
    };
    let result = reclaim_host::revoker::to_revocation_result(answer);
    let mut c = reclaim_workflow::testing::candidate();
    c.state = State::AwaitingRevocation;
    c.revocation.attempts = 0;
    let Ok(t) = apply(&c, &Event::Revocation(result), &Actor::Revocation, now()) else {
        return;
    };
    let shown = serde_json::json!([t.candidate, t.entry, t.effects]);
    every_string(&shown, &mut |v| {
        assert!(text::multi_line(v).is_ok(), "a plugin answer stored {v:?}")
    });
    let one_line = [
        t.candidate.assigned_to.clone(),
        t.candidate.revocation.last_outcome.clone(),
    ];
    for v in one_line.into_iter().flatten() {
        assert!(
            text::single_line(&v).is_ok(),
            "a one-line field holds {v:?}"
        );
    }
}

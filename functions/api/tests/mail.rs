//! Every kind of email, rendered through the real templates: the facts people need are in
//! both parts, the links are where they belong, and text from records is escaped in HTML.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use reclaim_api::mail::{MailContext, Rendered, Renderer};
use reclaim_workflow::{testing, Candidate, MailKind};

const ALL: [MailKind; 8] = [
    MailKind::AskUser,
    MailKind::Reminder,
    MailKind::KeepRequest,
    MailKind::Kept,
    MailKind::KeepRejected,
    MailKind::Removed,
    MailKind::Canceled,
    MailKind::ManualTask,
];

fn candidate() -> Candidate {
    let mut c = testing::candidate();
    c.deadline_at = Utc.with_ymd_and_hms(2026, 1, 19, 9, 0, 0).single();
    c
}

/// The HTML part as a reader sees it (the template escapes `/` and quotes in attributes).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn render(kind: MailKind, c: &Candidate) -> Rendered {
    let links = matches!(
        kind,
        MailKind::AskUser | MailKind::Reminder | MailKind::KeepRequest
    );
    Renderer::new()
        .render(&MailContext {
            kind,
            recipient_name: "Uma User".into(),
            candidate: c,
            yes_url: links.then(|| "https://reclaim.test/respond/YES.TOKEN".to_string()),
            no_url: links.then(|| "https://reclaim.test/respond/NO.TOKEN".to_string()),
            candidate_url: "https://reclaim.test/ui/candidates/c-1".into(),
            currency: "EUR",
        })
        .unwrap_or_else(|e| panic!("{kind:?} does not render: {e}"))
}

#[test]
fn every_kind_renders_both_parts_with_the_software_and_the_record() {
    let c = candidate();
    for kind in ALL {
        let m = render(kind, &c);
        let html = unescape(&m.html);
        for (part, body) in [("text", &m.text), ("html", &html)] {
            assert!(body.contains("Hello Uma User"), "{kind:?} {part}");
            assert!(body.contains("Acrobat Pro"), "{kind:?} {part}:\n{body}");
            assert!(body.contains("Adobe"), "{kind:?} {part}");
            assert!(
                body.contains("https://reclaim.test/ui/candidates/c-1"),
                "{kind:?} {part} links the record"
            );
            assert!(
                !body.contains("{{") && !body.contains("{%"),
                "{kind:?} {part}"
            );
        }
        assert!(m.subject.contains("Acrobat Pro"), "{kind:?}: {}", m.subject);
        assert!(m.html.starts_with("<!doctype html>"), "{kind:?}");
    }
}

#[test]
fn the_question_names_device_reason_inactive_days_deadline_and_yes_keep_no_remove() {
    let c = candidate();
    for kind in [MailKind::AskUser, MailKind::Reminder] {
        let m = render(kind, &c);
        for body in [&m.text, &unescape(&m.html)] {
            for fact in [
                "LAPTOP-042",
                "Not used; last used 120 days ago",
                "Monday 19 January 2026",
                "Yes, keep it",
                "No, remove it",
                "Yes = keep it",
                "No = remove it",
                "https://reclaim.test/respond/YES.TOKEN",
                "https://reclaim.test/respond/NO.TOKEN",
            ] {
                assert!(body.contains(fact), "{kind:?} lacks {fact:?}:\n{body}");
            }
        }
        let yes_line = m
            .text
            .lines()
            .find(|l| l.starts_with("Yes, keep it"))
            .unwrap();
        assert!(yes_line.ends_with("YES.TOKEN"), "{yes_line}");
        let no_line = m
            .text
            .lines()
            .find(|l| l.starts_with("No, remove it"))
            .unwrap();
        assert!(no_line.ends_with("NO.TOKEN"), "{no_line}");
    }
    assert!(render(MailKind::Reminder, &c).text.contains("reminder"));
    assert!(render(MailKind::Reminder, &c)
        .subject
        .starts_with("Reminder:"));
    // Without a deadline nothing promises automatic removal.
    let mut open_ended = c.clone();
    open_ended.deadline_at = None;
    assert!(!render(MailKind::AskUser, &open_ended)
        .text
        .contains("removed automatically"));
}

#[test]
fn the_keep_request_tells_approvers_who_what_and_the_saving() {
    let m = render(MailKind::KeepRequest, &candidate());
    for body in [&m.text, &unescape(&m.html)] {
        for fact in [
            "Uma User",
            "asked to keep",
            "EUR 239.88 per year",
            "Approve (keep)",
            "Reject (remove)",
            "RC0000001",
            "YES.TOKEN",
            "NO.TOKEN",
        ] {
            assert!(body.contains(fact), "lacks {fact:?}:\n{body}");
        }
    }
    assert!(m.subject.contains("RC0000001"));
}

#[test]
fn the_saving_in_mail_is_on_the_reports_basis() {
    let mut c = candidate();
    c.price_per_right_cents = 10_000;
    c.unused_rights = 2;
    c.price_period = reclaim_workflow::PricePeriod::Monthly;
    let m = render(MailKind::KeepRequest, &c);
    assert!(m.text.contains("save EUR 2,400.00 per year"), "{}", m.text);
    c.price_period = reclaim_workflow::PricePeriod::OneTime;
    let m = render(MailKind::KeepRequest, &c);
    assert!(m.text.contains("save EUR 200.00 one-time"), "{}", m.text);
}

#[test]
fn outcomes_say_what_happened_and_carry_no_answer_links() {
    let c = candidate();
    for (kind, words) in [
        (MailKind::Kept, "was approved"),
        (MailKind::KeepRejected, "was not approved"),
        (MailKind::Removed, "has been removed"),
        (MailKind::Canceled, "will not be removed"),
        (MailKind::ManualTask, "Close Complete"),
    ] {
        let m = render(kind, &c);
        assert!(m.text.contains(words), "{kind:?}:\n{}", m.text);
        assert!(m.html.contains(words), "{kind:?}:\n{}", m.html);
        assert!(!m.text.contains("/respond/"), "{kind:?} has an answer link");
    }
    let manual = render(MailKind::ManualTask, &c);
    assert!(manual.text.contains("LAPTOP-042"));
    assert!(manual.subject.starts_with("Please remove"));
}

#[test]
fn text_from_records_is_escaped_in_html_and_left_readable_in_text() {
    let mut c = candidate();
    c.software.product = "<script>alert(1)</script>".into();
    c.software.publisher = "Tom & \"Jerry\"".into();
    c.device = Some("<img src=x onerror=alert(2)>".into());
    if let Some(u) = c.user.as_mut() {
        u.display_name = "<b>Mallory</b>".into();
    }
    for kind in ALL {
        let m = render(kind, &c);
        for bad in ["<script", "<img", "<b>Mallory"] {
            assert!(
                !m.html.contains(bad),
                "{kind:?} lets {bad} through:\n{}",
                m.html
            );
        }
        assert!(
            m.html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{kind:?}:\n{}",
            m.html
        );
        assert!(m.html.contains("Tom &amp; &quot;Jerry&quot;"), "{kind:?}");
        // The plain-text part is not HTML: people read the name as it is.
        assert!(m.text.contains("<script>alert(1)</script>"), "{kind:?}");
    }
}

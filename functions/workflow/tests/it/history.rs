//! The audit trail reads as words: every event the workflow can record has them.

use reclaim_workflow::graph::{EDGES, EDITS};
use reclaim_workflow::history::{browser, stage_change, to_csv, words};
use reclaim_workflow::{ActorRef, HistoryEntry, State};

#[test]
fn every_event_of_the_workflow_reads_as_words() {
    let mut seen = 0;
    for e in EDGES {
        for event in e.events {
            let w = words(event, e.from, e.to);
            assert_ne!(&w, event, "no words for {event}");
            assert!(w.starts_with(char::is_uppercase), "{w}");
            seen += 1;
        }
    }
    for event in EDITS {
        assert_ne!(&words(event, State::Ready, State::Ready), event);
    }
    assert!(seen > 40);
}

#[test]
fn a_step_that_stays_says_so_and_a_browser_is_named_briefly() {
    assert_eq!(
        stage_change(State::AwaitingRevocation, State::AwaitingRevocation),
        "stays Awaiting Revocation"
    );
    assert_eq!(
        stage_change(State::Ready, State::AwaitingUser),
        "Ready → Awaiting User"
    );
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/131.0.0.0 Safari/537.36";
    assert_eq!(browser(chrome), "Chrome");
    assert_eq!(
        browser("Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36 Edg/131.0"),
        "Edge"
    );
    assert_eq!(browser("curl/8.5.0"), "curl");
    assert_eq!(browser(""), "another program");
}

#[test]
fn the_trail_exports_as_csv_in_words_and_as_recorded() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let entry = HistoryEntry {
        candidate_id: "c-1".into(),
        version: 3,
        at,
        actor: ActorRef::Person("uma".into()),
        event: "answer-remove".into(),
        from: State::AwaitingUser,
        to: State::AwaitingRevocation,
        reason: Some("=not needed, thanks".into()),
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8.5.0".into()),
    };
    let csv = to_csv("RC0000001", &[entry]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("candidate,at,who,what,event,from,to,details,ip,user_agent")
    );
    assert_eq!(
        lines.next(),
        Some(
            "RC0000001,2026-03-01T12:00:00+00:00,uma,The user answered: remove it,answer-remove,\
             Awaiting User,Awaiting Revocation,\"'=not needed, thanks\",203.0.113.9,curl/8.5.0"
        )
    );
}

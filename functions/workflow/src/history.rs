//! The audit trail as people read it: words for every event, the client in brief, and the
//! CSV an auditor takes away. Pages, exports and the API's `what` all use these.

use crate::model::{ActorRef, HistoryEntry, State, Timestamp};

/// What happened, in words ("User answered: remove it"), from the event and where it led.
pub fn words(event: &str, from: State, to: State) -> String {
    let failed_for_good = to == State::AttentionRequired;
    let s = match event {
        "reclaim" if to == State::AttentionRequired => "Reclaim stopped: something is missing",
        "reclaim" if to == State::AwaitingUser => "Reclaim started: the user is asked",
        "reclaim" => "Reclaim started: removal without asking",
        "answer-keep" => "The user answered: keep it",
        "answer-remove" => "The user answered: remove it",
        "approve" => "Keep request approved",
        "reject" => "Keep request rejected",
        "deadline-passed" => "No answer by the deadline: removal starts",
        "remind" => "Reminder sent to the user",
        "revocation-removed" => "The plugin removed it",
        "revocation-already-absent" => "Already gone at the vendor: nothing to remove",
        "revocation-manual-task" => "A person must remove it: task opened",
        "revocation-pending" => "Removal requested: the vendor carries it out later",
        "revocation-transient-error" if failed_for_good => {
            "Removal failed too often: a person must look"
        }
        "revocation-transient-error" => "Removal failed for now: it is retried",
        "revocation-permanent-error" => "Removal failed: a person must look",
        "retry-revocation" => "Removal tried again",
        "close-complete" => "Closed complete by a person",
        "close-skipped" => "Closed skipped: kept",
        "resume" => "Resumed",
        "usage-detected" => "Used again: reclamation canceled",
        "assign" => "Assigned",
        "work-note" => "Work note added",
        "update-user" => "User details corrected",
        "mail-refused" => "The mail server refused the user's address",
        "mail-undeliverable" => "Nobody to send a message to",
        "verify-due" => "Vendor check due",
        "check-now" => "Vendor check asked for now",
        "verified-absent" if from == State::ClosedComplete => "Re-check: still gone at the vendor",
        "verified-absent" => "The vendor confirms it is gone",
        "verified-present" if from == State::ClosedComplete => "Re-check: it is back at the vendor",
        "verified-present" if failed_for_good => "The vendor still shows it: a person must look",
        "verified-present" => "The vendor still shows it",
        "verify-unknown" => "The plugin cannot tell whether it is gone",
        "verify-transient-error" if failed_for_good => {
            "Could not confirm the removal: a person must look"
        }
        "verify-transient-error" => "Vendor check failed for now: asked again later",
        "verify-permanent-error" => "Vendor check failed",
        "reopen" => "Reopened as a new candidate",
        "accept-reappeared" => "Accepted: the user keeps what came back",
        "exclusion-held" => "Not done: the rule excludes this user",
        "override-exclusion" => "The rule's exclusion overridden",
        other => return other.to_string(),
    };
    s.to_string()
}

/// Where the candidate went: "Ready → Awaiting User", or "stays Closed Complete".
pub fn stage_change(from: State, to: State) -> String {
    if from == to {
        format!("stays {}", from.label())
    } else {
        format!("{} → {}", from.label(), to.label())
    }
}

/// Where things stand, for the person the email was about or to (no stage names).
pub fn for_the_user(state: State) -> &'static str {
    match state {
        State::Ready => "nothing has been decided yet",
        State::AwaitingUser => "waiting for the user's answer",
        State::AwaitingApproval => "the request to keep it is with the approvers",
        State::AwaitingRevocation => "it is being removed",
        State::AttentionRequired => "the IT team is looking into it",
        State::ClosedComplete => "removed",
        State::ClosedSkipped => "kept",
        State::ClosedCanceled => "kept: it was used again",
    }
}

/// Who acted, as people read it.
pub fn who(actor: &ActorRef) -> String {
    match actor {
        ActorRef::Person(id) => id.clone(),
        ActorRef::Scheduler => "Reclaim (on schedule)".into(),
        ActorRef::Revocation => "Reclaim (vendor's answer)".into(),
        ActorRef::Mail => "Reclaim (mail server's answer)".into(),
    }
}

/// A user agent in brief ("Chrome", "Firefox", "curl"): the full string stays on the record.
pub fn browser(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    // Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
    for (needle, name) in [
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("chromium/", "Chromium"),
        ("headlesschrome", "Chrome (headless)"),
        ("chrome/", "Chrome"),
        ("safari/", "Safari"),
        ("curl/", "curl"),
        ("python", "a Python program"),
        ("outlook", "Outlook"),
        ("bot", "a bot or link scanner"),
        ("scan", "a bot or link scanner"),
    ] {
        if ua.contains(needle) {
            return name;
        }
    }
    "another program"
}

/// The columns of every trail export (one candidate's or a period's).
pub const CSV_HEADER: &str = "candidate,at,who,what,event,from,to,details,ip,user_agent\n";

/// One transition as a CSV line for an auditor: in words and as recorded (event name, reason,
/// address and full user agent), every cell made safe for spreadsheets.
pub fn csv_line(number: &str, e: &HistoryEntry) -> String {
    let cell = crate::text::csv_cell;
    let mut line = [
        number.to_string(),
        e.at.to_rfc3339(),
        e.actor.to_string(),
        words(&e.event, e.from, e.to),
        e.event.clone(),
        e.from.label().to_string(),
        e.to.label().to_string(),
        e.reason.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
    ]
    .iter()
    .map(|v| cell(v))
    .collect::<Vec<_>>()
    .join(",");
    line.push('\n');
    line
}

/// A candidate's trail as CSV for an auditor: one line per transition, oldest first.
pub fn to_csv(number: &str, entries: &[HistoryEntry]) -> String {
    let mut out = String::from(CSV_HEADER);
    for e in entries {
        out.push_str(&csv_line(number, e));
    }
    out
}

/// A period as an auditor asks for it: `from` and `to` as dates (`2026-01-01`, `to` counting
/// its whole day) or as RFC 3339 times (`to` not included). The same words everywhere (API,
/// workspace, CLI); an error names the field and says what to write.
pub fn period(from: &str, to: &str) -> Result<(Timestamp, Timestamp), (&'static str, String)> {
    let read = |field: &'static str, text: &str, end: bool| {
        let text = text.trim();
        if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let day = if end { d.succ_opt().unwrap_or(d) } else { d };
            return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| {
                (
                    field,
                    format!("'{text}' is not a date: write it as 2026-01-31 (or an RFC 3339 time)"),
                )
            })
    };
    let start = read("from", from, false)?;
    let end = read("to", to, true)?;
    if end <= start {
        return Err(("to", "must be after from".into()));
    }
    Ok((start, end))
}
